package doctor

import (
	"fmt"
	"io"
	"strings"
)

// Status is a check's verdict.
type Status string

const (
	OK       Status = "ok"       // works as the collector needs it
	Degraded Status = "degraded" // the collector runs, without something (Cost says what)
	Missing  Status = "missing"  // the collector cannot start, or a part it is configured to use does not work
	Unused   Status = "unused"   // the collector does not use it (here, or with this configuration)
	Unknown  Status = "unknown"  // could not be checked (Detail says why; another check names the cause)
)

// Check is one line of the report.
type Check struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	Detail string `json:"detail"`         // what was found
	Cost   string `json:"cost,omitempty"` // what the user loses while it is not ok
	// Remote marks a service off the node (the object store, the
	// Kubernetes API): the collector starts without it and retries.
	Remote bool `json:"remote,omitempty"`
}

// Report is every check, in order.
type Report struct {
	Node   string  `json:"node"`
	Checks []Check `json:"checks"`
}

func (r *Report) add(cs ...Check) { r.Checks = append(r.Checks, cs...) }

// Failed lists the missing checks; nodeOnly leaves out the remote ones.
func (r *Report) Failed(nodeOnly bool) []Check {
	var out []Check
	for _, c := range r.Checks {
		if c.Status == Missing && !(nodeOnly && c.Remote) {
			out = append(out, c)
		}
	}
	return out
}

// Count is how many checks have status s.
func (r *Report) Count(s Status) int {
	n := 0
	for _, c := range r.Checks {
		if c.Status == s {
			n++
		}
	}
	return n
}

// WriteText writes one line per check — status, name, what was found and,
// when it is not ok, what it costs — and a summary line.
func (r *Report) WriteText(w io.Writer) {
	for _, c := range r.Checks {
		line := fmt.Sprintf("%-9s %s: %s", c.Status, c.Name, c.Detail)
		if c.Cost != "" && (c.Status == Missing || c.Status == Degraded) {
			line += " — " + c.Cost
		}
		fmt.Fprintln(w, strings.ReplaceAll(line, "\n", " "))
	}
	fmt.Fprintf(w, "node %s: %d ok, %d degraded, %d missing, %d unused, %d unknown\n", r.Node,
		r.Count(OK), r.Count(Degraded), r.Count(Missing), r.Count(Unused), r.Count(Unknown))
}

// ok, degraded, … build checks.
func ok(name, detail string) Check { return Check{Name: name, Status: OK, Detail: detail} }

func unused(name, detail string) Check { return Check{Name: name, Status: Unused, Detail: detail} }

func unknown(name, detail string) Check { return Check{Name: name, Status: Unknown, Detail: detail} }

func degraded(name, detail, cost string) Check {
	return Check{Name: name, Status: Degraded, Detail: detail, Cost: cost}
}

func missing(name, detail, cost string) Check {
	return Check{Name: name, Status: Missing, Detail: detail, Cost: cost}
}

// dedup keeps the first of equal strings.
func dedup(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
