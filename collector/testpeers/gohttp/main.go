// Command gohttp is a Go net/http service for the capture tests: every
// request calls a downstream through one shared http.Client (a pooled,
// keep-alive Transport) and answers with its body.
//
//	gohttp HOST:PORT DOWNSTREAM_URL
//
// The Transport keeps up to IDLE (default 64) idle connections and opens
// at most CONNS (default 0: no limit), so that concurrent requests take
// turns on kept-alive connections; an https DOWNSTREAM_URL is called over
// crypto/tls (HTTP/1.1, the server's certificate not verified).
package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: gohttp HOST:PORT DOWNSTREAM_URL")
		os.Exit(2)
	}
	down := os.Args[2]
	transport := &http.Transport{
		MaxIdleConnsPerHost: envInt("IDLE", 64),
		MaxConnsPerHost:     envInt("CONNS", 0),
		// Set, it also keeps the Transport on HTTP/1.1.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: transport}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ready" {
			io.WriteString(w, "ok")
			return
		}
		resp, err := client.Get(down + r.URL.Path)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		w.Write(body)
	})
	fmt.Println("READY")
	if err := http.ListenAndServe(os.Args[1], nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func envInt(name string, def int) int {
	v, err := strconv.Atoi(os.Getenv(name))
	if err != nil {
		return def
	}
	return v
}
