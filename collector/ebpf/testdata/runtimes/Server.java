// Test server: com.sun.net.httpserver with a thread per request (cached pool).
// usage: java Server HOST PORT [DOWNSTREAM_URL [httpclient|executor|completable]]  (see server.py for paths)
// Two-tier calls use HttpURLConnection, which blocks on the handler thread,
// or with "httpclient" one shared java.net.http.HttpClient (HTTP/1.1, a
// keep-alive pool; its selector thread reads every connection's responses),
// or with "executor" a worker of a shared fixed pool of 4 threads makes the
// call and the handler waits for it with Future.get(10 s), or with
// "completable" a CompletableFuture chain on a fixed pool of 3 threads
// (supplyAsync, thenApply) the handler waits for with get(10 s).
import com.sun.net.httpserver.HttpServer;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

public class Server {
  public static void main(String[] a) throws Exception {
    String down = a.length > 2 ? a[2] : "";
    HttpClient shared = a.length > 3 && a[3].equals("httpclient")
        ? HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build() : null;
    String mode = a.length > 3 ? a[3] : "";
    ExecutorService pool = mode.equals("executor") ? Executors.newFixedThreadPool(4)
        : mode.equals("completable") ? Executors.newFixedThreadPool(3) : null;
    HttpServer s = HttpServer.create(new InetSocketAddress(a[0], Integer.parseInt(a[1])), 128);
    s.setExecutor(Executors.newCachedThreadPool());
    s.createContext("/", ex -> {
      String path = ex.getRequestURI().toString();
      byte[] body;
      int status = 200;
      try (InputStream in = ex.getRequestBody()) { in.readAllBytes(); }
      if (shared != null) {
        try {
          HttpResponse<byte[]> r = shared.send(HttpRequest.newBuilder(URI.create(down + path)).build(),
              HttpResponse.BodyHandlers.ofByteArray());
          status = r.statusCode();
          body = r.body();
        } catch (InterruptedException e) {
          throw new java.io.IOException(e);
        }
      } else if (pool != null) {
        try {
          Object[] r = mode.equals("executor") ? pool.submit(() -> fetch(down + path)).get(10, TimeUnit.SECONDS)
              : CompletableFuture.supplyAsync(() -> fetch(down + path), pool).thenApply(x -> x).get(10, TimeUnit.SECONDS);
          status = (Integer) r[0];
          body = (byte[]) r[1];
        } catch (Exception e) {
          throw new java.io.IOException(e);
        }
      } else if (!down.isEmpty()) {
        HttpURLConnection c = (HttpURLConnection) URI.create(down + path).toURL().openConnection();
        status = c.getResponseCode();
        try (InputStream in = c.getInputStream()) { body = in.readAllBytes(); }
      } else if (path.startsWith("/chunked/")) {
        ex.getResponseHeaders().set("Content-Type", "text/plain");
        ex.sendResponseHeaders(200, 0); // 0 = chunked
        try (OutputStream o = ex.getResponseBody()) {
          o.write("chunk-one ".getBytes()); o.flush();
          o.write("chunk-two ".getBytes()); o.flush();
          o.write(path.getBytes());
        }
        return;
      } else if (path.startsWith("/big/")) {
        body = "x".repeat(Integer.parseInt(path.split("/")[2])).getBytes();
      } else {
        body = ("ok " + path).getBytes(StandardCharsets.UTF_8);
      }
      ex.getResponseHeaders().set("Content-Type", "text/plain");
      ex.sendResponseHeaders(status, body.length);
      try (OutputStream o = ex.getResponseBody()) { o.write(body); }
    });
    s.start();
    System.out.println("READY");
    System.out.flush();
  }

  // fetch GETs url with HttpURLConnection: {status, body}.
  static Object[] fetch(String url) {
    try {
      HttpURLConnection c = (HttpURLConnection) URI.create(url).toURL().openConnection();
      int status = c.getResponseCode();
      try (InputStream in = c.getInputStream()) { return new Object[] {status, in.readAllBytes()}; }
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }
}
