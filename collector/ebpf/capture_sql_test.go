//go:build linux

package ebpf

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/zerotrace/zerotrace/collector/testpeers"
	"github.com/zerotrace/zerotrace/internal/testenv"
	"github.com/zerotrace/zerotrace/pkg/span"
)

// startDB runs a database server of testpeers for the test, or skips
// when its programs are not installed.
func startDB(t *testing.T, start func(dir, ns, ip string) (*testpeers.Server, error), ns, ip string) {
	t.Helper()
	s, err := start(t.TempDir(), ns, ip)
	if err != nil {
		if strings.HasPrefix(err.Error(), "needs ") {
			testenv.Skip(t, "%v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
}

// sqlSpans returns the c-p and s-p spans of each statement (by endpoint).
func sqlSpans(spans []span.Span, proto span.L7Protocol) map[string]map[span.TapSide][]span.Span {
	out := map[string]map[span.TapSide][]span.Span{}
	for _, s := range spans {
		if s.L7Protocol != proto {
			continue
		}
		if out[s.Endpoint] == nil {
			out[s.Endpoint] = map[span.TapSide][]span.Span{}
		}
		out[s.Endpoint][s.TapSide] = append(out[s.Endpoint][s.TapSide], s)
	}
	return out
}

type sqlWant struct {
	endpoint string // the normalised statement
	typ      string
	status   span.ResponseStatus
	rows     int64
	exc      string // part of the exception
}

// checkSQL asserts one c-p and one s-p span per statement with the
// expected fields and equal sequence numbers.
func checkSQL(t *testing.T, spans []span.Span, proto span.L7Protocol, db string, ws []sqlWant) {
	t.Helper()
	got := sqlSpans(spans, proto)
	for _, w := range ws {
		c, s := got[w.endpoint][span.TapClientProcess], got[w.endpoint][span.TapServerProcess]
		if len(c) != 1 || len(s) != 1 {
			var eps []string
			for ep := range got {
				eps = append(eps, fmt.Sprintf("%q", ep))
			}
			t.Errorf("%q: %d client and %d server spans, want 1 and 1; endpoints: %s", w.endpoint, len(c), len(s), strings.Join(eps, " "))
			continue
		}
		for _, sp := range []span.Span{c[0], s[0]} {
			if sp.RequestType != w.typ || sp.ResponseStatus != w.status || sp.ResultCount != w.rows || sp.RequestDomain != db ||
				!strings.Contains(sp.ResponseException, w.exc) || sp.EndNs <= sp.StartNs {
				t.Errorf("%q %s: type %q status %s rows %d db %q exception %q; want %q %s %d %q %q", w.endpoint, sp.TapSide,
					sp.RequestType, sp.ResponseStatus, sp.ResultCount, sp.RequestDomain, sp.ResponseException, w.typ, w.status, w.rows, db, w.exc)
			}
		}
		if c[0].ReqTCPSeq != s[0].ReqTCPSeq || c[0].RespTCPSeq != s[0].RespTCPSeq || c[0].ReqTCPSeq == 0 {
			t.Errorf("%q: seqs client %d/%d server %d/%d", w.endpoint, c[0].ReqTCPSeq, c[0].RespTCPSeq, s[0].ReqTCPSeq, s[0].RespTCPSeq)
		}
	}
}

// mysqlScript is what the mysql client runs; mysqlWant what it yields.
const mysqlScript = "CREATE TABLE books (id INT PRIMARY KEY, title VARCHAR(40));" +
	"INSERT INTO books VALUES (1, 'Hamlet'), (2, 'Dune'), (3, 'Emma');" +
	"SELECT title FROM books WHERE id > 1;" +
	"UPDATE books SET title = 'Ulysses' WHERE id = 3;" +
	"SELECT nope FROM missing;"

var mysqlWant = []sqlWant{
	{"CREATE TABLE books (id INT PRIMARY KEY, title VARCHAR(?))", "CREATE", span.StatusOK, 0, ""},
	{"INSERT INTO books VALUES (?, ?), (?, ?), (?, ?)", "INSERT", span.StatusOK, 3, ""},
	{"SELECT title FROM books WHERE id > ?", "SELECT", span.StatusOK, 2, ""},
	{"UPDATE books SET title = ? WHERE id = ?", "UPDATE", span.StatusOK, 1, ""},
	{"SELECT nope FROM missing", "SELECT", span.StatusClientError, 0, "42S02"},
}

// TestCaptureMySQL: the mariadb client against mariadbd in two namespaces:
// statements with their normalised text, the database, affected and
// returned rows, an error with its SQLSTATE.
func TestCaptureMySQL(t *testing.T) {
	requireRoot(t)
	tp := newTopo(t)
	startDB(t, testpeers.StartMariaDB, tp.ServerNS, tp.ServerIP)
	mysql := func(args ...string) (string, error) {
		a := append([]string{"netns", "exec", tp.ClientNS, "mariadb", "--no-defaults", "-h", tp.ServerIP, "-P", "3306", "-u", "root"}, args...)
		out, err := exec.Command("ip", a...).CombinedOutput()
		return string(out), err
	}
	if out, err := mysql("-e", "CREATE DATABASE shop"); err != nil {
		t.Fatalf("create database: %v %s", err, out)
	}
	live, err := startLive(t, Options{NetNS: []uint32{netnsInode(t, tp.ClientNS), netnsInode(t, tp.ServerNS)}})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if out, err := mysql("-D", "shop", "-e", mysqlScript); err == nil || !strings.Contains(out, "doesn't exist") {
		t.Fatalf("script: %v %s", err, out)
	}
	checkSQL(t, live.Spans(), span.L7MySQL, "shop", mysqlWant)
}

// postgresWant is what psql's commands yield, one span each.
var postgresWant = []sqlWant{
	{"CREATE TABLE books (id int PRIMARY KEY, title text)", "CREATE", span.StatusOK, 0, ""},
	{"INSERT INTO books VALUES (?, ?), (?, ?), (?, ?)", "INSERT", span.StatusOK, 3, ""},
	{"SELECT title FROM books WHERE id > ?", "SELECT", span.StatusOK, 2, ""},
	{"UPDATE books SET title = ? WHERE id = ?", "UPDATE", span.StatusOK, 1, ""},
	{"SELECT nope FROM missing", "SELECT", span.StatusClientError, 0, "42P01"},
}

// psqlArgs are the commands of postgresWant as psql arguments.
var psqlArgs = []string{"-c", "CREATE TABLE books (id int PRIMARY KEY, title text)",
	"-c", "INSERT INTO books VALUES (1, 'Hamlet'), (2, 'Dune'), (3, 'Emma')",
	"-c", "SELECT title FROM books WHERE id > 1",
	"-c", "UPDATE books SET title = 'Ulysses' WHERE id = 3",
	"-c", "SELECT nope FROM missing"}

// TestCapturePostgreSQL: psql against postgres in two namespaces.
func TestCapturePostgreSQL(t *testing.T) {
	requireRoot(t)
	tp := newTopo(t)
	startDB(t, testpeers.StartPostgres, tp.ServerNS, tp.ServerIP)
	psql := func(args ...string) (string, error) {
		a := append([]string{"netns", "exec", tp.ClientNS, "psql", "-h", tp.ServerIP, "-p", "5432", "-U", "postgres"}, args...)
		out, err := exec.Command("ip", a...).CombinedOutput()
		return string(out), err
	}
	if out, err := psql("-d", "postgres", "-c", "CREATE DATABASE shop"); err != nil {
		t.Fatalf("create database: %v %s", err, out)
	}
	live, err := startLive(t, Options{NetNS: []uint32{netnsInode(t, tp.ClientNS), netnsInode(t, tp.ServerNS)}})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if out, err := psql(append([]string{"-d", "shop"}, psqlArgs...)...); err == nil || !strings.Contains(out, "does not exist") {
		t.Fatalf("psql: %v %s", err, out)
	}
	checkSQL(t, live.Spans(), span.L7PostgreSQL, "shop", postgresWant)
}
