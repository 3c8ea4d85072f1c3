//go:build linux

package proc

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/zerotrace/zerotrace/internal/annotated"
)

// statFields is a stat line's fields 3 to 52 (proc(5)) as this machine's
// kernel writes them, field 48 (arg_start) given.
func statFields(argStart string) string {
	f := strings.Fields("S 9511 9511 1213 0 -1 4194304 125 0 0 0 0 0 0 0 20 0 1 0 23969 3133440 375 " +
		"18446744073709551615 93864535797760 93864535817641 140730707534912 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 " +
		"93864535833648 93864535835264 93865336135680 ARG 140730707536590 140730707536590 140730707537899 0")
	f[48-3] = argStart
	return strings.Join(f, " ")
}

// TestStatArgStart: arg_start is the 46th field after the command's last
// ')', whatever the command's name holds; anything else is an error.
func TestStatArgStart(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
		want uint64
		err  bool
	}{
		{"cat", append(annotated.Hex(`
			39353137 20 // "9517 ": pid
			28636174 29 // "(cat)": comm
			20          // " " then fields 3 on
		`), statFields("140730707536570")+"\n"...), 140730707536570, false},
		{"a name with spaces and parentheses", append(annotated.Hex(`
			37 20                   // "7 "
			28 61 29 20 31 20 32 29 // "(a) 1 2)": the name is "a) 1 2", its own choice
			20
		`), statFields("4096")+"\n"...), 4096, false},
		{"not permitted to trace: 0", append(annotated.Hex(`
			37 20 28 78 29 20 // "7 (x) "
		`), statFields("0")+"\n"...), 0, false},
		{"no newline", append(annotated.Hex(`
			37 20 28 78 29 20 // "7 (x) "
		`), statFields("12")...), 12, false},
		{"cut before field 48", annotated.Hex(`
			37 20 28 78 29 20 53 20 31 // "7 (x) S 1"
		`), 0, true},
		{"a letter in arg_start", append(annotated.Hex(`
			37 20 28 78 29 20 // "7 (x) "
		`), statFields("12a4")+"\n"...), 0, true},
		{"over 64 bits", append(annotated.Hex(`
			37 20 28 78 29 20 // "7 (x) "
		`), statFields("18446744073709551616")+"\n"...), 0, true},
		{"no ')'", annotated.Hex(`
			37 20 28 78 20 53 // "7 (x S"
		`), 0, true},
		{"empty", nil, 0, true},
	} {
		got, err := StatArgStart(tc.b)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("%s: %d, %v; want %d, error %v", tc.name, got, err, tc.want, tc.err)
		}
	}
	// This process's own line: arg_start is where its arguments are.
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Fatal(err)
	}
	if at, err := StatArgStart(b); err != nil || at == 0 {
		t.Errorf("/proc/self/stat: %d, %v", at, err)
	}
}

// TestLookupSameNameExec: a program that exec'd another of its own name
// since the event (a shell's exec of a shell) keeps its thread's name, so
// only its arguments' place tells: the event's program is then the one its
// exec told (Keep). Its place unknown on either side, /proc is read.
func TestLookupSameNameExec(t *testing.T) {
	root := curlProc(t, "http://h/second")
	os.WriteFile(filepath.Join(root, "7", "stat"), []byte("7 (curl) "+statFields("1000")+"\n"), 0o644)
	first := Exec{Comm: "curl", Args: []byte("curl\x00http://h/first\x00")}
	for _, tc := range []struct {
		name     string
		argStart uint64
		want     string
	}{
		{"exec'd again", 2000, "curl http://h/first"},
		{"the same exec", 1000, "curl http://h/second"},
		{"place not kept", 0, "curl http://h/second"},
	} {
		c := &Cache{Root: root}
		x := first
		x.ArgStart = tc.argStart
		c.Keep(7, x)
		if got := c.Lookup(7, 7, "curl"); got.Cmdline != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got.Cmdline, tc.want)
		}
	}
	// /proc shows no place (the collector may not trace the process).
	os.WriteFile(filepath.Join(root, "7", "stat"), []byte("7 (curl) "+statFields("0")+"\n"), 0o644)
	c := &Cache{Root: root}
	c.Keep(7, Exec{Comm: "curl", Args: []byte("curl\x00http://h/first\x00"), ArgStart: 2000})
	if got := c.Lookup(7, 7, "curl"); got.Cmdline != "curl http://h/second" {
		t.Errorf("no place in /proc: %q, want /proc's", got.Cmdline)
	}
}

// FuzzStatArgStart: any bytes give an error or a number whose digits are
// written after the line's last ')'.
func FuzzStatArgStart(f *testing.F) {
	f.Add([]byte("9517 (cat) " + statFields("140730707536570") + "\n"))
	f.Add([]byte("7 (a) 1 2) " + statFields("4096")))
	f.Add([]byte("7 (x) S 1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		at, err := StatArgStart(b)
		if err != nil {
			return
		}
		tail := string(b[strings.LastIndexByte(string(b), ')')+1:])
		if !strings.Contains(tail, strconv.FormatUint(at, 10)) {
			t.Fatalf("%q: %d, not in the fields", b, at)
		}
	})
}

// BenchmarkStatArgStart: a lookup's extra parse, once per process.
func BenchmarkStatArgStart(b *testing.B) {
	line := []byte("9517 (python3) " + statFields("140730707536570") + "\n")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := StatArgStart(line); err != nil {
			b.Fatal(err)
		}
	}
}
