// reviews: com.sun.net.httpserver with a thread pool; each request calls
// ratings through the sidecar on the handler thread. No tracing header is
// forwarded. X-ZT-Marker is the tests' ground truth: copied onto the ratings
// call and logged with the connection the request came on (a ZTGT line).
import com.sun.net.httpserver.HttpServer;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.net.InetSocketAddress;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.Executors;

public class Reviews {
    public static void main(String[] args) throws Exception {
        int port = args.length > 0 ? Integer.parseInt(args[0]) : 9081;
        System.setProperty("http.keepAlive", "false");
        HttpServer s = HttpServer.create(new InetSocketAddress("127.0.0.1", port), 64);
        s.createContext("/reviews", ex -> {
            String marker = GroundTruth.log(ex);
            HttpURLConnection c = (HttpURLConnection) new URL("http://127.0.0.1:15001/ratings/0").openConnection();
            c.setRequestProperty("Host", "ratings");
            c.setRequestProperty("X-ZT-Marker", marker);
            int code = c.getResponseCode();
            InputStream in = code < 400 ? c.getInputStream() : c.getErrorStream();
            ByteArrayOutputStream buf = new ByteArrayOutputStream();
            if (in != null) { in.transferTo(buf); in.close(); }
            c.disconnect();
            byte[] body = ("{\"id\":0,\"reviews\":[{\"reviewer\":\"Reviewer1\",\"rating\":" + buf.toString(StandardCharsets.UTF_8) + "}]}").getBytes(StandardCharsets.UTF_8);
            ex.getResponseHeaders().set("Content-Type", "application/json");
            ex.sendResponseHeaders(code == 200 ? 200 : 502, body.length);
            try (OutputStream o = ex.getResponseBody()) { o.write(body); }
        });
        s.setExecutor(Executors.newFixedThreadPool(8));
        s.start();
        System.out.println("READY");
        System.out.flush();
    }
}
