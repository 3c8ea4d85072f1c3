//go:build linux

package bookinfo

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/zerotrace/zerotrace/collector/testpeers"
	"github.com/zerotrace/zerotrace/pkg/plugin"
	"github.com/zerotrace/zerotrace/pkg/span"
)

// The secrets the redaction test sends, each distinctive, and what must
// stay visible.
const (
	secQueryPassword = "ZtQueryPw7f3a91"
	secQueryToken    = "ZtQueryTok2c8e44"
	secUserinfo      = "ZtUserinfo9b1d05"
	secBearer        = "ZtBearer4e7a18"
	secCookie        = "ZtCookie61f2c3"
	secAPIKey        = "ZtApiKey0d9b77"
	secBasic         = "ZtBasic5e0f2a"
	secRedis         = "ZtRedisPw3a5f20"
	secPostgres      = "ZtPgPw8c1e6b"
	secPostgresNew   = "ZtPgNewPw5d4a19"
	secMySQL         = "ZtMyPwb72e0c"
	secMySQLError    = "ZtMyErr1c9d3f" // in a statement that fails: its error quotes it
	secPostgresError = "ZtPgErr6a2b8e"

	visiblePage  = "zt-visible-page-31" // a harmless query value
	visibleRedis = "zt-visible-key-33"  // a Redis key
)

var secrets = []string{secQueryPassword, secQueryToken, secUserinfo, secBearer, secCookie, secAPIKey, secBasic,
	base64.StdEncoding.EncodeToString([]byte("ztbasic:" + secBasic)), secRedis, secPostgres, secPostgresNew, secMySQL, secMySQLError, secPostgresError}

// TestBookinfoRedaction sends secrets through the demo the way clients
// do — in the query, in URL userinfo (an absolute-form target), in
// Authorization, Cookie, X-Api-Key and Basic credentials, in a Redis AUTH
// and HELLO … AUTH, in a PostgreSQL cleartext-password login and an ALTER
// ROLE … PASSWORD, in a MySQL login whose handshake carries the password in
// clear (mysql_clear_password), in failing statements whose errors quote
// them, several of them also on the clients' command lines — with the databases in the details pod and the clients in
// loadgen, so both captures see them on both nodes. No secret may be in
// `zerotrace store dump`, in any frame the plugin binary returns over its
// protocol, in the collectors' logs, or anywhere in the shard files,
// zstd frames decompressed; the path, the harmless query value and the
// REDACTED markers must be visible, and each protocol's login must have
// been captured.
func TestBookinfoRedaction(t *testing.T) {
	requireDemo(t, "redis-server", "redis-cli", "mariadbd", "mariadb-install-db", "mariadb", "psql", "runuser")
	bin := buildBinaries(t)
	d := startDemo(t, bin, "bookinfo")
	srvNS, srvIP := d.prefix+"-details", "10.203.1.10" // topology.sh
	cliErr := func(stdin string, env []string, argv ...string) (string, error) {
		c := exec.Command("ip", append([]string{"netns", "exec", d.prefix + "-loadgen"}, argv...)...)
		c.Env, c.Stdin = append(os.Environ(), env...), strings.NewReader(stdin)
		out, err := c.CombinedOutput()
		return string(out), err
	}
	cli := func(stdin string, env []string, argv ...string) string {
		t.Helper()
		out, err := cliErr(stdin, env, argv...)
		if err != nil {
			t.Fatalf("%s: %v\n%s", argv[0], err, out)
		}
		return out
	}

	// HTTP through loadgen's sidecar, as in the issue. curl lives on after
	// its request (heldClient): its command line is checked below.
	if code := heldClient(t, d.prefix+"-loadgen", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "20", "-H", "Host: productpage",
		"-H", "Authorization: Bearer "+secBearer, "-H", "Cookie: session="+secCookie, "-H", "X-Api-Key: "+secAPIKey,
		"http://127.0.0.1:15001/productpage?password="+secQueryPassword+"&token="+secQueryToken+"&page="+visiblePage); code != "200" {
		t.Fatalf("request with secrets: HTTP %s", code)
	}
	cli("", nil, "curl", "-s", "-o", "/dev/null", "--max-time", "20", "-u", "ztbasic:"+secBasic, "-H", "Host: productpage",
		"http://127.0.0.1:15001/productpage?page="+visiblePage)
	// An absolute-form target with userinfo (nginx refuses it; the request was on the wire).
	cli("", nil, "curl", "-s", "-o", "/dev/null", "--max-time", "20", "-H", "Host: productpage",
		"--request-target", "http://ztuser:"+secUserinfo+"@productpage/productpage?page="+visiblePage, "http://127.0.0.1:15001/")

	redisLogins(t, srvNS, srvIP, cli)

	pg, err := testpeers.StartPostgresAuth(t.TempDir(), srvNS, srvIP, "ztapp", secPostgres)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Stop)
	uri := "postgresql://ztapp:" + secPostgres + "@" + srvIP + ":5432/postgres?sslmode=disable"
	cli("", nil, "psql", uri, "-Atc", "SELECT 1")
	cli("ALTER ROLE ztapp PASSWORD '"+secPostgresNew+"';\n", nil, "psql", uri, "-v", "ON_ERROR_STOP=1")
	uri = strings.Replace(uri, secPostgres, secPostgresNew, 1)
	if out, err := cliErr("SELECT '"+secPostgresError+"'::int;\n", nil, "psql", uri, "-v", "ON_ERROR_STOP=1"); err == nil ||
		!strings.Contains(out, "invalid input syntax") {
		t.Fatalf("psql: a failing statement: %v %s", err, out)
	}

	my, err := testpeers.StartMariaDBAuth(t.TempDir(), srvNS, srvIP, "ztapp", secMySQL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(my.Stop)
	for _, auth := range []string{"mysql_clear_password", "mysql_native_password"} {
		cli("", nil, "mariadb", "--no-defaults", "-h", srvIP, "-P", "3306", "-u", "ztapp", "-p"+secMySQL, "--default-auth="+auth,
			"-e", "SELECT 1")
	}
	if out, err := cliErr("CREATE USER zt2 IDENTIFIED BYY '"+secMySQLError+"';\n", nil, "mariadb", "--no-defaults", "-h", srvIP,
		"-P", "3306", "-u", "ztapp", "-p"+secMySQL); err == nil || !strings.Contains(out, "near 'BYY") {
		t.Fatalf("mariadb: a failing statement: %v %s", err, out)
	}
	time.Sleep(settle)

	checkStoredSpans(t, d)
	dump, err := exec.Command(filepath.Join(bin, "zerotrace"), append([]string{"store", "dump", "--limit", "0"}, d.dataDirs...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("store dump: %v\n%s", err, dump)
	}
	checkText(t, "zerotrace store dump", dump, "/productpage?password=REDACTED&token=REDACTED&page="+visiblePage)
	frames := pluginFrames(t, d)
	checkText(t, "the plugin's frames", frames, "/productpage?password=REDACTED")
	checkText(t, "the plugin's frames", frames, "page="+visiblePage)

	// What the collectors wrote, once they stopped: the shards, their logs.
	d.down()
	for _, n := range []string{"node1", "node2"} {
		b, _ := os.ReadFile(filepath.Join(d.run, "collect-"+n+".log"))
		checkText(t, n+"'s collector log", b, "")
	}
	checkShardFiles(t, d.dataDirs)
}

// redisLogins runs redis-server (requirepass from its configuration file)
// in the server pod and logs in from the client pod with redis-cli -a and
// with a client that sends AUTH and HELLO 3 AUTH (Debian's
// /usr/bin/python3, the password from its environment).
func redisLogins(t *testing.T, ns, ip string, cli func(string, []string, ...string) string) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "redis.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("bind %s\nport 6379\nrequirepass %s\nsave \"\"\nappendonly no\nprotected-mode no\ndir %s\n",
		ip, secRedis, dir)), 0o600)
	srv := exec.Command("ip", "netns", "exec", ns, "redis-server", conf)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	redisCLI := []string{"redis-cli", "-h", ip, "-p", "6379", "-a", secRedis, "--no-auth-warning"}
	for i := 0; ; i++ {
		c := exec.Command("ip", append([]string{"netns", "exec", ns}, append(redisCLI, "PING")...)...)
		if out, _ := c.CombinedOutput(); strings.TrimSpace(string(out)) == "PONG" {
			break
		}
		if i == 100 {
			t.Fatal("redis-server did not answer")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out := cli("", nil, append(redisCLI, "SET", visibleRedis, "v")...); strings.TrimSpace(out) != "OK" {
		t.Fatalf("redis-cli SET: %q", out)
	}
	script := filepath.Join(dir, "login.py")
	os.WriteFile(script, []byte(`import os, socket, sys
pw = os.environ["ZT_REDIS_PW"].encode()
def cmd(*args):
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)
s = socket.create_connection((sys.argv[1], 6379), timeout=10)
for c in (cmd(b"AUTH", pw), cmd(b"HELLO", b"3", b"AUTH", b"default", pw), cmd(b"GET", sys.argv[2].encode())):
    s.sendall(c)
    reply = s.recv(65536)
    if reply[:1] == b"-":
        sys.exit("redis: %r" % reply)
s.close()
`), 0o644)
	cli("", []string{"ZT_REDIS_PW=" + secRedis}, "/usr/bin/python3", script, ip, visibleRedis)
}

// checkText fails for every secret in b, and when want (if any) is not in
// it.
func checkText(t *testing.T, what string, b []byte, want string) {
	t.Helper()
	for _, s := range secrets {
		if i := bytes.Index(b, []byte(s)); i >= 0 {
			t.Errorf("%s holds the secret %q: …%s…", what, s, b[max(0, i-120):min(len(b), i+60)])
		}
	}
	if want != "" && !bytes.Contains(b, []byte(want)) {
		t.Errorf("%s lacks %q", what, want)
	}
}

// heldClient runs curl argv in netns ns and keeps it alive for 2 s after
// its transfer: it then reads an empty FIFO (a second transfer, --next
// file://), whose writer the test opens after the wait. The hold dates from
// when a client that had exited before the collector read /proc had spans
// without a command line; the exec's event now carries it (collector/proc
// Exec, docs/capture.md "A program's identity told by its exec"). Held,
// the client is still there when the collector handles its first event,
// so the redaction checked is that of /proc's copy, the one a long-lived
// client's spans get. It returns curl's output.
func heldClient(t *testing.T, ns string, argv ...string) string {
	t.Helper()
	fifo := filepath.Join(t.TempDir(), "hold")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	c := exec.Command("ip", append(append([]string{"netns", "exec", ns}, argv...), "--next", "-s", "file://"+fifo)...)
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	time.Sleep(2 * time.Second)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		// Non-blocking: no reader yet is ENXIO (curl still in its
		// first transfer); a curl that ended never opens it.
		if f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
			break
		}
		select {
		case err := <-done:
			t.Fatalf("%s: ended before reading the FIFO: %v\n%s", argv[0], err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			c.Process.Kill()
			t.Fatalf("%s: never opened the FIFO\n%s", argv[0], out.String())
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("%s: %v\n%s", argv[0], err, out.String())
	}
	return out.String()
}

// checkStoredSpans checks the stored spans: the requests with secrets are
// there, by both captures, redacted as docs/capture.md says, and every
// protocol's login was captured.
func checkStoredSpans(t *testing.T, d *demo) {
	t.Helper()
	count := map[string]int{}
	for _, s := range d.spans(t) {
		src := s.SignalSource.String()
		switch {
		case s.RequestResource == "/productpage?password=REDACTED&token=REDACTED&page="+visiblePage:
			count["query "+src]++
		case s.RequestResource == "http://REDACTED:REDACTED@productpage/productpage?page="+visiblePage:
			count["userinfo "+src]++
		case s.L7Protocol == span.L7Redis && s.RequestType == "AUTH" && s.RequestResource == "":
			count["redis AUTH "+src]++
		case s.L7Protocol == span.L7Redis && s.RequestType == "HELLO" && s.RequestResource == "3":
			count["redis HELLO "+src]++
		case s.L7Protocol == span.L7Redis && s.RequestType == "GET" && s.RequestResource == visibleRedis:
			count["redis GET "+src]++
		case s.L7Protocol == span.L7PostgreSQL && strings.HasPrefix(s.Endpoint, "ALTER ROLE ztapp PASSWORD ?"):
			count["postgres ALTER ROLE "+src]++
		case s.L7Protocol == span.L7MySQL && s.Endpoint == "SELECT ?" && s.RequestDomain == "":
			count["mysql SELECT "+src]++
		case s.L7Protocol == span.L7MySQL && strings.Contains(s.ResponseException, "near 'BYY ?' at line 1"):
			count["mysql error "+src]++
		case s.L7Protocol == span.L7PostgreSQL && strings.HasSuffix(s.ResponseException, `invalid input syntax for type integer: "?"`):
			count["postgres error "+src]++
		}
		if s.ProcessName == "curl" && strings.Contains(s.Cmdline, "Bearer") {
			t.Errorf("curl's command line kept its Authorization header: %q", s.Cmdline)
		}
		if s.ProcessName == "curl" && strings.Contains(s.Cmdline, "Authorization: REDACTED") {
			count["curl command line"]++
		}
	}
	// The curl request crosses loadgen's sidecar and productpage's sidecar
	// into the app: c-p and s-p spans at each of the three hops (6), the
	// packet capture at both vNICs of the cross-pod hop (2). The sidecar
	// answers the absolute-form target itself (curl's and its span). The
	// databases: a client and a server span per login or statement, and
	// the packet capture's on the way between the nodes.
	for what, least := range map[string]int{"query ebpf": 6, "query packet": 2, "userinfo ebpf": 2,
		"redis AUTH ebpf": 4, "redis AUTH packet": 2, "redis HELLO ebpf": 2, "redis GET ebpf": 2, "postgres ALTER ROLE ebpf": 2,
		"postgres ALTER ROLE packet": 1, "mysql SELECT ebpf": 4, "mysql SELECT packet": 2, "mysql error ebpf": 2, "postgres error ebpf": 2, "curl command line": 1} {
		if count[what] < least {
			t.Errorf("%s: %d spans, want at least %d (all: %v)", what, count[what], least, count)
		}
	}
	fmt.Printf("bookinfo redaction: spans %v\n", count)
}

// pluginFrames asks the plugin binary, over Grafana's plugin protocol, for
// the search tables (traces and spans), the service map, every metric and
// the trace of every stored span, and returns all the frames as JSON.
func pluginFrames(t *testing.T, d *demo) []byte {
	t.Helper()
	var out bytes.Buffer
	from, to := time.Now().Add(-time.Hour), time.Now().Add(time.Minute)
	query := func(q map[string]any) {
		resp, err := d.client.Query(context.Background(), q, from, to)
		if err != nil || resp.Error != "" {
			t.Fatalf("query %v: %v %s", q, err, resp.Error)
		}
		for _, f := range resp.Frames {
			b, err := json.Marshal(f)
			if err != nil {
				t.Fatal(err)
			}
			out.Write(b)
			out.WriteByte('\n')
		}
	}
	query(map[string]any{"queryType": "search", "limit": 10000})
	query(map[string]any{"queryType": "search", "tableType": "spans", "limit": 10000})
	query(map[string]any{"queryType": "serviceMap"})
	for _, m := range plugin.MetricNames() {
		query(map[string]any{"queryType": "metrics", "metric": m})
	}
	for _, s := range d.spans(t) {
		query(map[string]any{"queryType": "trace", "spanId": strconv.FormatUint(s.SpanID, 10)})
	}
	return out.Bytes()
}

// checkShardFiles reads every file of the data directories as bytes and
// decompresses every zstd frame in them (Badger's compressed blocks, the
// Arrow buffers inside them and in its value log), and in what they
// decompress to: no secret anywhere, and the harmless query value found
// (so the decoding reached the stored strings).
func checkShardFiles(t *testing.T, dirs []string) {
	t.Helper()
	dec, err := zstd.NewReader(nil, zstd.WithDecoderMaxMemory(1<<30))
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	var files, frames int
	visible := false
	var scan func(name string, b []byte, depth int)
	scan = func(name string, b []byte, depth int) {
		checkText(t, name, b, "")
		visible = visible || bytes.Contains(b, []byte(visiblePage))
		if depth == 3 {
			return
		}
		magic := []byte{0x28, 0xb5, 0x2f, 0xfd}
		for i := bytes.Index(b, magic); i >= 0; {
			if err := dec.Reset(bytes.NewReader(b[i:])); err == nil {
				if out, _ := io.ReadAll(io.LimitReader(dec, 256<<20)); len(out) > 0 {
					frames++
					scan(fmt.Sprintf("%s, zstd frame at %d", name, i), out, depth+1)
				}
			}
			j := bytes.Index(b[i+1:], magic)
			if j < 0 {
				break
			}
			i += 1 + j
		}
	}
	for _, dir := range dirs {
		filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				t.Error(err)
				return nil
			}
			files++
			scan(p, b, 0)
			return nil
		})
	}
	if !visible || frames == 0 {
		t.Errorf("shard files: %d files, %d zstd frames decoded, %q found: %v", files, frames, visiblePage, visible)
	}
	fmt.Printf("bookinfo redaction: %d shard files, %d zstd frames decoded, no secret\n", files, frames)
}
