package doctor

import (
	"strings"
	"testing"
)

// TestReport: one line per check with its status, and its cost only when
// it is missing or degraded; Failed leaves the remote checks out for the
// node-only verdict.
func TestReport(t *testing.T) {
	r := Report{Node: "node1"}
	r.add(ok("kernel", "Linux 6.18"), degraded("attach uprobe", "refused", "Go handoffs are not followed"),
		missing("capabilities", "lacks CAP_BPF (load BPF programs and maps)", "no eBPF capture"),
		unused("attach kprobe", "not used"), unknown("memlock", "cannot tell"),
		Check{Name: "object store reachable", Status: Missing, Detail: "refused", Cost: "not uploaded", Remote: true})
	var b strings.Builder
	r.WriteText(&b)
	want := `ok        kernel: Linux 6.18
degraded  attach uprobe: refused — Go handoffs are not followed
missing   capabilities: lacks CAP_BPF (load BPF programs and maps) — no eBPF capture
unused    attach kprobe: not used
unknown   memlock: cannot tell
missing   object store reachable: refused — not uploaded
node node1: 1 ok, 1 degraded, 2 missing, 1 unused, 1 unknown
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	if f := r.Failed(false); len(f) != 2 || f[0].Name != "capabilities" || f[1].Name != "object store reachable" {
		t.Errorf("failed: %+v", f)
	}
	if f := r.Failed(true); len(f) != 1 || f[0].Name != "capabilities" {
		t.Errorf("failed on the node: %+v", f)
	}
}

func byName(cs []Check) map[string]Check {
	m := map[string]Check{}
	for _, c := range cs {
		m[c.Name] = c
	}
	return m
}

// wantCheck asserts the status of check name in cs and that its detail
// and cost say each of detail; it returns the check.
func wantCheck(t *testing.T, cs map[string]Check, name string, st Status, detail ...string) Check {
	t.Helper()
	c := cs[name]
	if c.Status != st {
		t.Errorf("%s: %s (%s), want %s", name, c.Status, c.Detail, st)
	}
	for _, d := range detail {
		if !strings.Contains(c.Detail+" — "+c.Cost, d) {
			t.Errorf("%s: want %q in %q — %q", name, d, c.Detail, c.Cost)
		}
	}
	return c
}
