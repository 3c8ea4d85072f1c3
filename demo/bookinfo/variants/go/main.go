// Command reviews is the go variant's reviews service: a net/http server (a
// goroutine per connection) that calls ratings through its sidecar with one
// shared http.Transport (a pool of keep-alive connections). Like the Java
// reviews it forwards no tracing header. X-ZT-Marker is the tests' ground
// truth: copied onto the ratings call and logged with the connection the
// request came on and its position there (a ZTGT line).
//
// With ZT_TLS_CERT, ZT_TLS_KEY and ZT_TLS_CA set (the https variant, which
// reuses this server) it serves HTTPS with that certificate and calls its
// sidecar over HTTPS, verifying it with that CA: crypto/tls on both sides,
// HTTP/1.1 (no h2, like the sidecar it talks to).
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
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

var (
	transport = &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: time.Minute}
	client    = &http.Client{Timeout: 10 * time.Second, Transport: transport}
	outbound  = "http://127.0.0.1:15001" // the sidecar's outbound listener
)

// useTLS sets the client up for HTTPS to the sidecar from ZT_TLS_CA and
// returns the server's certificate and key files, or "" when TLS is off.
func useTLS() (cert, key string) {
	cert, key = os.Getenv("ZT_TLS_CERT"), os.Getenv("ZT_TLS_KEY")
	if cert == "" {
		return "", ""
	}
	pem, err := os.ReadFile(os.Getenv("ZT_TLS_CA"))
	if err != nil {
		log.Fatalf("reading ZT_TLS_CA: %v", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		log.Fatal("ZT_TLS_CA: no certificate")
	}
	transport.TLSClientConfig = &tls.Config{RootCAs: roots}
	outbound = "https://127.0.0.1:15001"
	return cert, key
}

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

	req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, outbound+"/ratings/0", nil)
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
	cert, key := useTLS()
	ln, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("READY")
	if cert != "" {
		srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){} // HTTP/1.1 only
		log.Fatal(srv.ServeTLS(ln, cert, key))
	}
	log.Fatal(srv.Serve(ln))
}
