// Test client: java.net.http.HttpClient (HTTP/1.1, keep-alive), requests in order.
// usage: java Client URL...   prints "STATUS LEN URL" per request.
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;

public class Client {
  public static void main(String[] a) throws Exception {
    HttpClient c = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
    for (String u : a) {
      HttpResponse<byte[]> r = c.send(HttpRequest.newBuilder(URI.create(u)).build(),
          HttpResponse.BodyHandlers.ofByteArray());
      System.out.println(r.statusCode() + " " + r.body().length + " " + u);
    }
    System.exit(0);
  }
}
