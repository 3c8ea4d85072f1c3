// Command reviews is the go variant's reviews service: a net/http server (a
// goroutine per connection) that calls ratings through its sidecar with one
// shared http.Transport (a pool of keep-alive connections). Like the Java
// reviews it forwards no tracing header. X-ZT-Marker is the tests' ground
// truth: copied onto the ratings call and logged with the connection the
// request came on and its position there (a ZTGT line).
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"
)

type connKey struct{}

// conn is what the server remembers of one client connection.
type conn struct {
	remote, local string
	requests      atomic.Int64
}

var client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: time.Minute}}

func reviews(w http.ResponseWriter, r *http.Request) {
	c := r.Context().Value(connKey{}).(*conn)
	marker := r.Header.Get("X-ZT-Marker")
	m := marker
	if m == "" {
		m = "-"
	}
	rh, rp, _ := net.SplitHostPort(c.remote)
	lh, lp, _ := net.SplitHostPort(c.local)
	fmt.Printf("ZTGT %s %s %s %s %s %d\n", m, rh, rp, lh, lp, c.requests.Add(1))

	req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, "http://127.0.0.1:15001/ratings/0", nil)
	req.Host = "ratings"
	req.Header.Set("X-ZT-Marker", marker)
	code, rating := http.StatusBadGateway, []byte("null")
	if resp, err := client.Do(req); err != nil {
		log.Printf("ratings: %v", err)
	} else {
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode == http.StatusOK {
			code, rating = http.StatusOK, body
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	fmt.Fprintf(w, `{"id":0,"reviews":[{"reviewer":"Reviewer1","rating":%s}]}`, rating)
}

func main() {
	port := "9081"
	if len(os.Args) > 1 {
		port = os.Args[1]
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/reviews/", reviews)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, &conn{remote: c.RemoteAddr().String(), local: c.LocalAddr().String()})
		}}
	ln, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("READY")
	log.Fatal(srv.Serve(ln))
}
