// GroundTruth logs the tests' ground truth for the Java services: the
// X-ZT-Marker header of each request with the connection it came on and its
// position there (a ZTGT line, docs/demo.md). Not part of a service's logic.
import com.sun.net.httpserver.HttpExchange;
import java.net.InetSocketAddress;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

final class GroundTruth {
    // requests per client address: a connection's position (a reused port counts on)
    private static final Map<String, Integer> seen = new ConcurrentHashMap<>();

    private GroundTruth() {}

    // log writes the request's ZTGT line and returns its marker ("" if none).
    static String log(HttpExchange ex) {
        String m = ex.getRequestHeaders().getFirst("X-ZT-Marker");
        InetSocketAddress r = ex.getRemoteAddress(), l = ex.getLocalAddress();
        int n = seen.merge(r.toString(), 1, Integer::sum);
        System.out.println("ZTGT " + (m == null || m.isEmpty() ? "-" : m) + " " + r.getAddress().getHostAddress() + " " + r.getPort()
                + " " + l.getAddress().getHostAddress() + " " + l.getPort() + " " + n);
        System.out.flush();
        return m == null ? "" : m;
    }
}
