//go:build linux

package pluginclient

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"

	"github.com/zerotrace/zerotrace/internal/testenv"
	"github.com/zerotrace/zerotrace/pkg/internal/damage"
	"github.com/zerotrace/zerotrace/pkg/internal/storetest"
	"github.com/zerotrace/zerotrace/pkg/store"
)

// nobody runs the plugin as Grafana's plugin processes run: an unprivileged
// user that reads the data through its group and can write none of it.
const nobody = 65534

func asNobody(bin string) *exec.Cmd {
	cmd := exec.Command(bin)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{}}}
	cmd.Env = []string{"HOME=/nonexistent", "TMPDIR=/tmp"}
	return cmd
}

func chgrpAll(t *testing.T, dir string, gid int) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, -1, gid)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func noticesOf(f *data.Frame) string {
	if f.Meta == nil {
		return ""
	}
	var out []string
	for _, n := range f.Meta.Notices {
		out = append(out, n.Text)
	}
	return strings.Join(out, "\n")
}

// TestPluginSurvivesDamage runs the built plugin as nobody (read access
// through the data group only) against every damage of pkg/internal/damage
// on one node's shard or manifest: the process stays up, still answers from
// the other node, names what it could not read in the query's notices and in
// CheckHealth, and leaves every byte of the data directory as it was.
func TestPluginSurvivesDamage(t *testing.T) {
	testenv.RequireRoot(t)
	bin := pluginBinary(t)
	base, err := os.MkdirTemp("", "zerotrace-damage-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(base)
	os.Chmod(base, 0o755)
	pristine := filepath.Join(base, "pristine")
	start := time.Now().Add(-2 * time.Minute).Truncate(time.Second)
	traces := genTraces(4, 20, start)
	storetest.WriteTraces(t, pristine, "65534", traces)
	m, err := store.OpenReader(pristine)
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	b, err := os.ReadFile(filepath.Join(pristine, "node1", store.ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	man, err := store.ParseManifest(b)
	if err != nil || len(man.Shards) != 1 {
		t.Fatalf("node1 manifest: %v %+v", err, man)
	}
	shard := man.Shards[0].Name
	all, good := len(spansOn(traces, "")), len(spansOn(traces, "node2"))
	from, to := start.Add(-time.Minute), time.Now().Add(time.Minute)
	goodTrace := spansOn(traces, "node2")[0].SpanID
	// What the trace of goodTrace must be: whole when the damage is served,
	// else what the plugin assembles when node1 is not there at all.
	onlyNode2 := filepath.Join(base, "node2-only")
	if err := damage.Copy(pristine, onlyNode2); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(onlyNode2, "node1")); err != nil {
		t.Fatal(err)
	}
	wholeTrace, node2Trace := traceSpanIDs(t, bin, pristine, goodTrace), traceSpanIDs(t, bin, onlyNode2, goodTrace)
	if len(wholeTrace) != 38 || len(node2Trace) == 0 || len(node2Trace) >= 38 {
		t.Fatalf("reference traces: %d spans whole (want 38), %d without node1", len(wholeTrace), len(node2Trace))
	}

	for i, c := range damage.Cases() {
		t.Run(c.Name, func(t *testing.T) {
			dir := filepath.Join(base, strconv.Itoa(i))
			if err := damage.Copy(pristine, dir); err != nil {
				t.Fatal(err)
			}
			chgrpAll(t, dir, nobody)
			nodeDir := filepath.Join(dir, "node1")
			if err := c.Apply(nodeDir, shard); err != nil {
				t.Fatal(err)
			}
			before, err := damage.Snapshot(dir)
			if err != nil {
				t.Fatal(err)
			}
			want := filepath.Join(nodeDir, shard)
			if c.Node {
				want = filepath.Join(nodeDir, store.ManifestName)
			}

			var stderr strings.Builder
			cmd := asNobody(bin)
			cl, err := Start(bin, Options{PluginID: "zerotrace-tracing-datasource", UID: "zt", Name: "Zerotrace",
				JSONData: map[string]any{"dataDirs": []string{dir}}, Stderr: &stderr, Cmd: cmd})
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			st, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid), "status"))
			if err != nil || !strings.Contains(string(st), "\nUid:\t65534\t65534\t65534\t65534\n") {
				t.Fatalf("the plugin does not run as nobody: %v\n%s", err, st)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()

			r, err := cl.Query(ctx, map[string]any{"queryType": "search", "tableType": "spans", "limit": 10000}, from, to)
			if err != nil {
				t.Fatalf("search: %v\nplugin stderr:\n%s", err, stderr.String())
			}
			if r.Error != "" || len(r.Frames) != 1 {
				t.Fatalf("search: %q", r.Error)
			}
			rows, notes := r.Frames[0].Rows(), noticesOf(r.Frames[0])
			if c.Served {
				if rows != all || notes != "" {
					t.Fatalf("search: %d rows (want %d), notices %q", rows, all, notes)
				}
			} else if rows != good || linesNaming(notes, want) != 1 {
				t.Fatalf("search: %d rows (want %d from node2), want one notice naming %s: %q", rows, good, want, notes)
			}

			h, err := cl.CheckHealth(ctx)
			if err != nil {
				t.Fatalf("CheckHealth: %v", err)
			}
			if c.Served {
				if h.Status != pluginv2.CheckHealthResponse_OK {
					t.Fatalf("CheckHealth: %v %q", h.Status, h.Message)
				}
			} else if h.Status != pluginv2.CheckHealthResponse_ERROR || !strings.Contains(h.Message, want) {
				t.Fatalf("CheckHealth: want ERROR naming %s: %v %q", want, h.Status, h.Message)
			}

			// Alive, and the good node still answers.
			r, err = cl.Query(ctx, map[string]any{"queryType": "trace", "spanId": strconv.FormatUint(goodTrace, 10)}, from, to)
			if err != nil || r.Error != "" || len(r.Frames) != 1 || cl.Exited() {
				t.Fatalf("trace from the good node after the damage: %v %+v exited=%v", err, r, cl.Exited())
			}
			wantIDs := node2Trace
			if c.Served {
				wantIDs = wholeTrace
			}
			if got := frameSpanIDs(t, r.Frames[0]); !slices.Equal(got, wantIDs) {
				t.Fatalf("trace from the good node after the damage: spans %v, want %v", got, wantIDs)
			}
			if n := linesNaming(noticesOf(r.Frames[0]), want); !c.Served && n != 1 {
				t.Fatalf("trace: %d notices name %s, want 1: %q", n, want, noticesOf(r.Frames[0]))
			}
			cl.Close()
			after, err := damage.Snapshot(dir)
			if err != nil {
				t.Fatal(err)
			}
			if d := damage.Diff(before, after); d != "" {
				t.Fatalf("the plugin changed the data directory:\n%s", d)
			}
			// Nor anything of its own left behind.
			left, _ := filepath.Glob(filepath.Join(os.TempDir(), "zerotrace-shard-*"))
			for _, l := range left {
				if st, err := os.Stat(l); err == nil && st.Sys().(*syscall.Stat_t).Uid == nobody {
					t.Errorf("left behind: %s", l)
				}
			}
		})
	}
}

func linesNaming(text, what string) int {
	n := 0
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, what) {
			n++
		}
	}
	return n
}

// traceSpanIDs asks a plugin reading dir for the trace of span id and
// returns its span ids, sorted.
func traceSpanIDs(t *testing.T, bin, dir string, id uint64) []string {
	t.Helper()
	cl, err := Start(bin, Options{PluginID: "zerotrace-tracing-datasource", UID: "zt", Name: "Zerotrace",
		JSONData: map[string]any{"dataDirs": []string{dir}}})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	r, err := cl.Query(context.Background(), map[string]any{"queryType": "trace", "spanId": strconv.FormatUint(id, 10)},
		time.Now().Add(-time.Hour), time.Now().Add(time.Minute))
	if err != nil || r.Error != "" || len(r.Frames) != 1 {
		t.Fatalf("reference trace of %d in %s: %v %+v", id, dir, err, r)
	}
	return frameSpanIDs(t, r.Frames[0])
}

// frameSpanIDs is a trace frame's spanID column, sorted.
func frameSpanIDs(t *testing.T, f *data.Frame) []string {
	t.Helper()
	fld, _ := f.FieldByName("spanID")
	if fld == nil {
		t.Fatalf("trace frame without spanID")
	}
	ids := make([]string, fld.Len())
	for i := range ids {
		ids[i] = fld.At(i).(string)
	}
	slices.Sort(ids)
	return ids
}
