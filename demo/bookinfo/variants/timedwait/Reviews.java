// reviews, timedwait variant: com.sun.net.httpserver with a thread pool; the
// handler hands the ratings call to a worker of a shared ExecutorService of 2
// threads and waits on the Future with a timeout (Future.get(10, SECONDS)),
// so the call runs on another thread than the request and the handler's wait
// is a timed one. Calls reuse keep-alive connections to the sidecar
// (HttpURLConnection's cache). No tracing header is forwarded. X-ZT-Marker is
// the tests' ground truth (copied onto the ratings call, logged with the
// request's connection as a ZTGT line).
import com.sun.net.httpserver.HttpServer;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.net.InetSocketAddress;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

public class Reviews {
    static final ExecutorService WORKERS = Executors.newFixedThreadPool(2);
    record Rating(int code, byte[] body) {}

    static Rating rating(String marker) throws Exception {
        HttpURLConnection c = (HttpURLConnection) new URL("http://127.0.0.1:15001/ratings/0").openConnection();
        c.setRequestProperty("Host", "ratings");
        c.setRequestProperty("X-ZT-Marker", marker);
        int code = c.getResponseCode();
        InputStream in = code < 400 ? c.getInputStream() : c.getErrorStream();
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        if (in != null) { in.transferTo(buf); in.close(); } // closing the stream returns the connection to the cache
        return new Rating(code, buf.toByteArray());
    }

    public static void main(String[] args) throws Exception {
        int port = args.length > 0 ? Integer.parseInt(args[0]) : 9081;
        HttpServer s = HttpServer.create(new InetSocketAddress("127.0.0.1", port), 64);
        s.createContext("/reviews", ex -> {
            String marker = GroundTruth.log(ex);
            Future<Rating> f = WORKERS.submit(() -> rating(marker));
            int code = 502;
            String rating = "null";
            try {
                Rating r = f.get(10, TimeUnit.SECONDS);
                code = r.code();
                rating = new String(r.body(), StandardCharsets.UTF_8);
            } catch (Exception e) {
                System.err.println("ratings: " + e);
            }
            byte[] body = ("{\"id\":0,\"reviews\":[{\"reviewer\":\"Reviewer1\",\"rating\":" + rating + "}]}").getBytes(StandardCharsets.UTF_8);
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
