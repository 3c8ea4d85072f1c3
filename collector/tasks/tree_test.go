package tasks

import (
	"testing"
	"time"
)

const ms = int64(time.Millisecond)

// TestOwner walks the shapes real servers give: aiohttp (a connection task
// that creates a task per request, which answers it and gathers its calls
// in child tasks), a connection task that answers its keep-alive requests
// itself, a worker task that answers overlapping requests, and tasks that
// answer nothing.
func TestOwner(t *testing.T) {
	const pid = 7
	var tr Tree
	// aiohttp: accept callback → connection task 1 (answers nothing) →
	// request task 2 (answers request 100, read at 10 ms, answered at 50 ms)
	// → gather children 3 and 4 (created at 12 ms).
	tr.Created(pid, 1, 0, 1*ms)
	tr.Served(pid, 100, 10*ms)
	tr.Created(pid, 2, 1, 11*ms)
	tr.Created(pid, 3, 2, 12*ms)
	tr.Created(pid, 4, 2, 12*ms)
	tr.Answered(pid, 2, 100, 50*ms)

	// A connection task 10 answering two keep-alive requests in turn:
	// 200 (read 100, answered 120), 201 (read 130, answered 150); its child
	// 11 created at 125 ms, between them.
	tr.Created(pid, 10, 0, 90*ms)
	tr.Served(pid, 200, 100*ms)
	tr.Served(pid, 201, 130*ms)
	tr.Answered(pid, 10, 200, 120*ms)
	tr.Answered(pid, 10, 201, 150*ms)
	tr.Created(pid, 11, 10, 125*ms)

	// A worker task 20 answering requests it took from a queue: 300 (read
	// 200, answered 240) and 301 (read 210 — while 300 was open — answered
	// 260): its work between 210 and 240 is for either.
	tr.Created(pid, 20, 0, 5*ms)
	tr.Served(pid, 300, 200*ms)
	tr.Served(pid, 301, 210*ms)
	tr.Answered(pid, 20, 300, 240*ms)
	tr.Answered(pid, 20, 301, 260*ms)

	// A background task 30 created by no task, answering nothing.
	tr.Created(pid, 30, 0, 1*ms)

	type q struct {
		id    uint64
		at    int64
		owner uint64
		known bool
	}
	check := func(name string, qs []q) {
		t.Helper()
		for _, c := range qs {
			owner, known := tr.Owner(pid, c.id, c.at)
			if owner != c.owner || known != c.known {
				t.Errorf("%s: task %d at %d ms: owner %d known %v, want %d %v", name, c.id, c.at/ms, owner, known, c.owner, c.known)
			}
		}
	}
	check("alive", []q{
		{3, 20 * ms, 0, false}, // child alive
		{2, 20 * ms, 0, false}, // request task alive: more answers may come
	})
	for _, id := range []uint64{2, 3, 4, 10, 11, 20, 30} {
		tr.Ended(pid, id, 300*ms)
	}
	check("ended", []q{
		{3, 20 * ms, 100, true},  // gather child → request task 2 at 12 ms
		{4, 400 * ms, 100, true}, // a child's later call: still its creator's request
		{2, 20 * ms, 100, true},
		{2, 5 * ms, 0, true},   // before the request was read
		{2, 51 * ms, 0, true},  // after its response began
		{1, 20 * ms, 0, false}, // the connection task is alive
		{10, 110 * ms, 200, true},
		{10, 140 * ms, 201, true},
		{10, 125 * ms, 0, true}, // between two requests: none open
		{11, 500 * ms, 0, true}, // created between them
		{20, 205 * ms, 300, true},
		{20, 220 * ms, 0, true}, // two requests open: ambiguous
		{20, 250 * ms, 301, true},
		{30, 20 * ms, 0, true}, // created by no task, answered nothing
		{99, 20 * ms, 0, true}, // never reported
	})
	tr.Ended(pid, 1, 300*ms)
	check("connection ended", []q{{1, 20 * ms, 0, true}})
	if o, k := tr.Owner(8, 3, 20*ms); o != 0 || !k {
		t.Errorf("another process: %d %v", o, k)
	}
}

// TestOwnerWaitsForServedRequest: an answered request whose server span has
// not come yet keeps the owner unknown.
func TestOwnerWaitsForServedRequest(t *testing.T) {
	var tr Tree
	tr.Created(1, 5, 0, 0)
	tr.Answered(1, 5, 100, 50*ms)
	tr.Ended(1, 5, 60*ms)
	if _, known := tr.Owner(1, 5, 20*ms); known {
		t.Fatal("owner known before the request's server span")
	}
	tr.Served(1, 100, 10*ms)
	if o, known := tr.Owner(1, 5, 20*ms); o != 100 || !known {
		t.Fatalf("owner %d %v, want 100", o, known)
	}
}

// TestExpireKeepsCreators: an ended task is forgotten after Keep unless a
// task still kept was created by it.
func TestExpireKeepsCreators(t *testing.T) {
	var tr Tree
	tr.Created(1, 1, 0, 0)
	tr.Created(1, 2, 1, 1*ms)
	tr.Served(1, 100, 0)
	tr.Answered(1, 1, 100, 5*ms)
	tr.Ended(1, 1, 10*ms)
	now := 10*ms + int64(Keep) + 1
	tr.Expire(now)
	if o, known := tr.Owner(1, 2, 0); known || o != 0 {
		t.Errorf("child alive: owner %d %v, want unknown", o, known)
	}
	if _, ok := tr.procs[1].tasks[1]; !ok {
		t.Fatal("the creator of a live task was forgotten")
	}
	tr.Ended(1, 2, now)
	tr.Expire(now + int64(Keep) + 1)
	if tr.Tracks(1) {
		t.Errorf("process kept after all its tasks expired: %+v", tr.procs[1])
	}
}

func BenchmarkOwner(b *testing.B) {
	var tr Tree
	for i := uint64(1); i <= 1000; i++ {
		tr.Created(1, i, i-1, int64(i))
	}
	tr.Served(1, 9, 0)
	tr.Answered(1, 1, 9, 1<<40)
	for i := uint64(1); i <= 1000; i++ {
		tr.Ended(1, i, 1<<41)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		tr.Owner(1, 60, 100) // 60 creators up
	}
}
