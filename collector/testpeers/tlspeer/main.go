// Command tlspeer is a Go crypto/tls server and client for the Go TLS
// capture tests (collector/ebpf capture_gotls_test.go): HTTP/1.1 over TLS
// and gRPC over TLS (h2), with a self-signed certificate made at start.
//
//	tlspeer serve-http ADDR        HTTPS (HTTP/1.1 only); each request waits DELAY_MS (default 300) then answers "ok PATH" (padded to SIZE, head flushed first with SPLIT=1; keepalive.go)
//	tlspeer serve-grpc ADDR        gRPC over TLS; any method answers its request bytes after DELAY_MS
//	tlspeer serve-plain ADDR       plain HTTP/1.1, as serve-http without TLS
//	tlspeer get ADDR MARKER N      N concurrent GETs of /m/MARKER-i (i = 1..N), one connection each
//	tlspeer call ADDR MARKER N     N concurrent unary calls of /zt.Marker/MARKER-i on one connection
//	tlspeer get-plain ADDR MARKER N  as get, without TLS
//	tlspeer seq ADDR MARKER N GAP_MS  N sequential GETs on one keep-alive connection (keepalive.go)
//
// The clients print one line per request: "MARKER-i START_NS END_NS"
// (wall clock), or exit non-zero on the first failure.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/encoding"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "tlspeer:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 2 {
		return fmt.Errorf("usage: tlspeer serve-http|serve-grpc ADDR | get|call ADDR MARKER N")
	}
	switch args[0] {
	case "serve-http", "serve-grpc", "serve-plain":
		return serve(args[0], args[1])
	case "seq":
		if len(args) < 5 {
			return fmt.Errorf("usage: tlspeer seq ADDR MARKER N GAP_MS")
		}
		n, err := strconv.Atoi(args[3])
		if err != nil {
			return fmt.Errorf("count: %w", err)
		}
		gap, err := strconv.Atoi(args[4])
		if err != nil {
			return fmt.Errorf("gap: %w", err)
		}
		return seqClient(args[1], args[2], n, time.Duration(gap)*time.Millisecond)
	case "get", "call", "get-plain":
		if len(args) < 4 {
			return fmt.Errorf("usage: tlspeer %s ADDR MARKER N", args[0])
		}
		n, err := strconv.Atoi(args[3])
		if err != nil {
			return fmt.Errorf("count: %w", err)
		}
		return clients(args[0], args[1], args[2], n)
	}
	return fmt.Errorf("unknown command %q", args[0])
}

func delay() time.Duration {
	ms, err := strconv.Atoi(os.Getenv("DELAY_MS"))
	if err != nil {
		ms = 300
	}
	return time.Duration(ms) * time.Millisecond
}

func selfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tlspeer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"tlspeer"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

func serve(mode, addr string) error {
	cert, err := selfSigned()
	if err != nil {
		return fmt.Errorf("making a certificate: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	fmt.Println("READY")
	if mode != "serve-grpc" {
		srv := &http.Server{Handler: http.HandlerFunc(answer), TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){}} // HTTP/1.1 only
		if mode == "serve-plain" {
			return srv.Serve(ln)
		}
		cfg.NextProtos = []string{"http/1.1"}
		return srv.Serve(tls.NewListener(ln, cfg))
	}
	s := grpc.NewServer(grpc.Creds(credentials.NewTLS(cfg)), grpc.ForceServerCodec(rawCodec{}),
		grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
			var req []byte
			if err := stream.RecvMsg(&req); err != nil {
				return err
			}
			time.Sleep(delay())
			return stream.SendMsg(&req)
		}))
	return s.Serve(ln)
}

// rawCodec sends and receives messages as they are.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *v.(*[]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*v.(*[]byte) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "raw" }

var _ encoding.Codec = rawCodec{}

func clients(mode, addr, marker string, n int) error {
	cfg := &tls.Config{InsecureSkipVerify: true, ServerName: "tlspeer"} // the server's certificate is made at its start
	var do func(name string) error
	switch mode {
	case "get", "get-plain":
		cfg.NextProtos = []string{"http/1.1"}
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
		scheme := "https://"
		if mode == "get-plain" {
			scheme = "http://"
		}
		do = func(name string) error {
			resp, err := client.Get(scheme + addr + "/m/" + name)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil || string(body) != "ok /m/"+name {
				return fmt.Errorf("%s: %q %v", name, body, err)
			}
			return nil
		}
	case "call":
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
		if err != nil {
			return fmt.Errorf("dialing: %w", err)
		}
		defer conn.Close()
		do = func(name string) error {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, resp := []byte("req "+name), []byte(nil)
			if err := conn.Invoke(ctx, "/zt.Marker/"+name, &req, &resp, grpc.ForceCodec(rawCodec{})); err != nil {
				return err
			}
			if string(resp) != string(req) {
				return fmt.Errorf("%s: answer %q", name, resp)
			}
			return nil
		}
	}
	var wg sync.WaitGroup
	lines, errs := make([]string, n), make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("%s-%d", marker, i+1)
			start := time.Now().UnixNano()
			errs[i] = do(name)
			lines[i] = fmt.Sprintf("%s %d %d", name, start, time.Now().UnixNano())
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			return errs[i]
		}
		fmt.Println(lines[i])
	}
	return nil
}
