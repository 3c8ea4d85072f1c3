package procmaps

import (
	"reflect"
	"strings"
	"testing"
)

// TestFiles: every mapped file once, in the order of its first mapping
// (paths with spaces whole), deleted ones marked without the suffix;
// anonymous mappings and pseudo-files left out.
func TestFiles(t *testing.T) {
	maps := `55d0c6a00000-55d0c6a2a000 r--p 00000000 08:01 1311 /usr/bin/python3.11
55d0c6a2a000-55d0c6b2a000 r-xp 0002a000 08:01 1311 /usr/bin/python3.11
55d0c7000000-55d0c7021000 rw-p 00000000 00:00 0 [heap]
7f1c3c600000-7f1c3c61c000 r--p 00000000 08:01 2247 /usr/lib/x86_64-linux-gnu/libssl.so.3
7f1c3c680000-7f1c3c690000 rw-p 00000000 00:00 0 
7f1c3c700000-7f1c3c710000 r-xp 00000000 08:01 2260 /opt/my app/_queue.cpython-311-x86_64-linux-gnu.so
7f1c3c900000-7f1c3c910000 r-xp 00000000 08:01 2251 /opt/app/lib/libssl.so.1.1 (deleted)
7f1c3c910000-7f1c3c920000 r--p 00010000 08:01 2251 /opt/app/lib/libssl.so.1.1 (deleted)
7ffd1c000000-7ffd1c021000 rw-p 00000000 00:00 0 [stack]
7ffd1c100000-7ffd1c102000 r-xp 00000000 00:00 0 [vdso]
`
	got, err := Files(strings.NewReader(maps))
	want := []File{{Path: "/usr/bin/python3.11"}, {Path: "/usr/lib/x86_64-linux-gnu/libssl.so.3"},
		{Path: "/opt/my app/_queue.cpython-311-x86_64-linux-gnu.so"}, {Path: "/opt/app/lib/libssl.so.1.1", Deleted: true}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v %v, want %+v", got, err, want)
	}
}

// TestFilesLongLine: a line over the scanner's limit is an error, not a
// short list.
func TestFilesLongLine(t *testing.T) {
	long := "7f1c3c600000-7f1c3c61c000 r--p 00000000 08:01 2247 /" + strings.Repeat("x", 2<<20) + "\n"
	if got, err := Files(strings.NewReader(long)); err == nil {
		t.Fatalf("got %d files and no error", len(got))
	}
}
