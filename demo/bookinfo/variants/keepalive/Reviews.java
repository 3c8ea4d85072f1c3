// reviews, keepalive variant: com.sun.net.httpserver with a thread pool; each
// request calls ratings through one shared java.net.http.HttpClient (a pool
// of keep-alive HTTP/1.1 connections to the sidecar), forwarding X-Request-ID.
// X-ZT-Marker is the tests' ground truth (copied onto the ratings call,
// logged with the request's connection as a ZTGT line). Setting Host needs
// -Djdk.httpclient.allowRestrictedHeaders=host (demo/bookinfo/up sets it).
import com.sun.net.httpserver.HttpServer;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.Executors;

public class Reviews {
    static final HttpClient CLIENT = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(10)).build();
    public static void main(String[] args) throws Exception {
        int port = args.length > 0 ? Integer.parseInt(args[0]) : 9081;
        HttpServer s = HttpServer.create(new InetSocketAddress("127.0.0.1", port), 64);
        s.createContext("/reviews", ex -> {
            HttpRequest.Builder req = HttpRequest.newBuilder(URI.create("http://127.0.0.1:15001/ratings/0"))
                    .timeout(Duration.ofSeconds(10)).header("Host", "ratings").header("X-ZT-Marker", GroundTruth.log(ex));
            String rid = ex.getRequestHeaders().getFirst("X-Request-ID");
            if (rid != null) req.header("X-Request-ID", rid);
            int code = 502;
            String rating = "null";
            try {
                HttpResponse<String> r = CLIENT.send(req.build(), HttpResponse.BodyHandlers.ofString());
                code = r.statusCode();
                rating = r.body();
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
