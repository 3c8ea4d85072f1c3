package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// seqClient is "tlspeer seq ADDR MARKER N GAP_MS": N sequential GETs of
// PREFIX MARKER-i (PREFIX from the environment, default /m/) on one
// keep-alive connection of one http.Transport, GAP_MS apart. Each line is
// "MARKER-i START_NS END_NS XRID BYTES": the response's X-Request-ID header
// and body length as the client got them (the test's ground truth). The
// client stays LINGER_MS (default 300) after the last response, its
// connection open, then exits. FIRST_PAUSE_UNTIL=FILE replaces the first
// gap with a wait until FILE exists, at most 30 s (its connection's reader
// meanwhile blocked in crypto/tls's Read).
func seqClient(addr, marker string, n int, gap time.Duration) error {
	prefix := os.Getenv("PREFIX")
	if prefix == "" {
		prefix = "/m/"
	}
	cfg := &tls.Config{InsecureSkipVerify: true, ServerName: "tlspeer", NextProtos: []string{"http/1.1"}}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg,
		MaxIdleConnsPerHost: 4, IdleConnTimeout: time.Minute}}
	var lines []string
	for i := range n {
		switch {
		case i == 1 && os.Getenv("FIRST_PAUSE_UNTIL") != "":
			if err := waitFile(os.Getenv("FIRST_PAUSE_UNTIL"), 30*time.Second); err != nil {
				return err
			}
		case i > 0:
			time.Sleep(gap)
		}
		name := fmt.Sprintf("%s-%d", marker, i+1)
		start := time.Now().UnixNano()
		req, _ := http.NewRequest(http.MethodGet, "https://"+addr+prefix+name, nil)
		req.Header.Set("X-ZT-Marker", name)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: status %d, %v", name, resp.StatusCode, err)
		}
		xrid := resp.Header.Get("X-Request-ID")
		if !strings.HasSuffix(xrid, name) {
			return fmt.Errorf("%s: response of %q", name, xrid)
		}
		lines = append(lines, fmt.Sprintf("%s %d %d %s %d", name, start, time.Now().UnixNano(), xrid, len(body)))
	}
	time.Sleep(time.Duration(envInt("LINGER_MS", 300)) * time.Millisecond)
	for _, l := range lines {
		fmt.Println(l)
	}
	return nil
}

// waitFile returns once path exists, or fails after within.
func waitFile(path string, within time.Duration) error {
	for deadline := time.Now().Add(within); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			return fmt.Errorf("waiting for %s: %w", path, err)
		}
	}
}

// answer is serve-http's handler: after DELAY_MS, "ok PATH" padded to SIZE
// bytes (when larger), with X-Request-ID set to the path; with SPLIT=1 the
// head is flushed before the body (two TLS records at least).
func answer(w http.ResponseWriter, r *http.Request) {
	time.Sleep(delay())
	body := "ok " + r.URL.Path
	if size := envInt("SIZE", 0); size > len(body) {
		body += strings.Repeat("z", size-len(body))
	}
	w.Header().Set("X-Request-ID", r.URL.Path)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	if os.Getenv("SPLIT") == "1" {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
	}
	io.WriteString(w, body)
}

func envInt(name string, def int) int {
	v, err := strconv.Atoi(os.Getenv(name))
	if err != nil {
		return def
	}
	return v
}
