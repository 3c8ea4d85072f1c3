// Command gohttp is a Go net/http service for the capture tests: every
// request calls a downstream through one shared http.Client (a pooled,
// keep-alive Transport) and answers with its body.
//
//	gohttp HOST:PORT DOWNSTREAM_URL
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: gohttp HOST:PORT DOWNSTREAM_URL")
		os.Exit(2)
	}
	down := os.Args[2]
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
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
