// reviews, completable variant: com.sun.net.httpserver with a thread pool;
// the handler runs the ratings call as a CompletableFuture chain on an
// executor of its own (supplyAsync on a fixed pool of 3, thenApply building
// the body on the thread that completes it, orTimeout 10 s) and joins it.
// One connection per call; no tracing header is forwarded. X-ZT-Marker is
// the tests' ground truth (copied onto the ratings call, logged with the
// request's connection as a ZTGT line).
import com.sun.net.httpserver.HttpServer;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.HttpURLConnection;
import java.net.InetSocketAddress;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

public class Reviews {
    static final ExecutorService CALLS = Executors.newFixedThreadPool(3);
    record Rating(int code, byte[] body) {}

    static Rating rating(String marker) {
        try {
            HttpURLConnection c = (HttpURLConnection) new URL("http://127.0.0.1:15001/ratings/0").openConnection();
            c.setRequestProperty("Host", "ratings");
            c.setRequestProperty("X-ZT-Marker", marker);
            int code = c.getResponseCode();
            InputStream in = code < 400 ? c.getInputStream() : c.getErrorStream();
            ByteArrayOutputStream buf = new ByteArrayOutputStream();
            if (in != null) { in.transferTo(buf); in.close(); }
            c.disconnect();
            return new Rating(code, buf.toByteArray());
        } catch (java.io.IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public static void main(String[] args) throws Exception {
        int port = args.length > 0 ? Integer.parseInt(args[0]) : 9081;
        System.setProperty("http.keepAlive", "false");
        HttpServer s = HttpServer.create(new InetSocketAddress("127.0.0.1", port), 64);
        s.createContext("/reviews", ex -> {
            String marker = GroundTruth.log(ex);
            Rating r;
            try {
                r = CompletableFuture.supplyAsync(() -> rating(marker), CALLS)
                        .thenApply(x -> new Rating(x.code(), ("{\"id\":0,\"reviews\":[{\"reviewer\":\"Reviewer1\",\"rating\":"
                                + new String(x.body(), StandardCharsets.UTF_8) + "}]}").getBytes(StandardCharsets.UTF_8)))
                        .orTimeout(10, TimeUnit.SECONDS).join();
            } catch (Exception e) {
                System.err.println("ratings: " + e);
                r = new Rating(502, "{\"id\":0,\"reviews\":[{\"reviewer\":\"Reviewer1\",\"rating\":null}]}".getBytes(StandardCharsets.UTF_8));
            }
            ex.getResponseHeaders().set("Content-Type", "application/json");
            ex.sendResponseHeaders(r.code() == 200 ? 200 : 502, r.body().length);
            try (OutputStream o = ex.getResponseBody()) { o.write(r.body()); }
        });
        s.setExecutor(Executors.newFixedThreadPool(8));
        s.start();
        System.out.println("READY");
        System.out.flush();
    }
}
