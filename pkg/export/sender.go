package export

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// sender delivers one OTLP request. Its error is a *sendError.
type sender interface {
	send(ctx context.Context, td ptrace.Traces) (rejected int64, err error)
	close() error
}

// sendError classifies a failed send: a permanent one (the backend refused
// the data itself) is not retried; a retryable one may say when to retry.
type sendError struct {
	err        error
	permanent  bool
	retryAfter time.Duration
}

func (e *sendError) Error() string { return e.err.Error() }
func (e *sendError) Unwrap() error { return e.err }

func permanent(err error) bool {
	var se *sendError
	return errors.As(err, &se) && se.permanent
}

func tlsConfig(c *Config) (*tls.Config, error) {
	t := &tls.Config{ServerName: c.TLS.ServerName, InsecureSkipVerify: c.TLS.InsecureSkipVerify, MinVersion: tls.VersionTLS12}
	if c.TLS.CAFile != "" {
		pem, err := os.ReadFile(c.TLS.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading the CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", c.TLS.CAFile)
		}
		t.RootCAs = pool
	}
	if c.TLS.CertFile != "" || c.TLS.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(c.TLS.CertFile, c.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("loading the client certificate: %w", err)
		}
		t.Certificates = []tls.Certificate{cert}
	}
	return t, nil
}

func newSender(c *Config) (sender, error) {
	switch c.Protocol {
	case ProtocolGRPC:
		return newGRPCSender(c)
	case ProtocolHTTP:
		return newHTTPSender(c)
	}
	return nil, fmt.Errorf("protocol %q: want grpc or http/protobuf", c.Protocol)
}

// grpcSender: OTLP/gRPC through ptraceotlp's client.
type grpcSender struct {
	conn    *grpc.ClientConn
	client  ptraceotlp.GRPCClient
	headers metadata.MD
	timeout time.Duration
}

func newGRPCSender(c *Config) (*grpcSender, error) {
	target, plaintext := c.Endpoint, c.TLS.Insecure
	if u, err := url.Parse(c.Endpoint); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
		target, plaintext = u.Host, u.Scheme == "http"
	}
	creds := insecure.NewCredentials()
	if !plaintext {
		t, err := tlsConfig(c)
		if err != nil {
			return nil, err
		}
		creds = credentials.NewTLS(t)
	}
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, fmt.Errorf("OTLP gRPC client for %s: %w", target, err)
	}
	return &grpcSender{conn: conn, client: ptraceotlp.NewGRPCClient(conn), headers: metadata.New(c.Headers), timeout: c.Timeout}, nil
}

func (g *grpcSender) send(ctx context.Context, td ptrace.Traces) (int64, error) {
	ctx, cancel := context.WithTimeout(metadata.NewOutgoingContext(ctx, g.headers), g.timeout)
	defer cancel()
	resp, err := g.client.Export(ctx, ptraceotlp.NewExportRequestFromTraces(td))
	if err != nil {
		st := status.Convert(err)
		se := &sendError{err: fmt.Errorf("OTLP gRPC export: %s: %s", st.Code(), st.Message())}
		switch st.Code() {
		case codes.InvalidArgument, codes.Unimplemented, codes.FailedPrecondition, codes.OutOfRange, codes.AlreadyExists, codes.NotFound:
			se.permanent = true
		}
		return 0, se
	}
	ps := resp.PartialSuccess()
	if ps.RejectedSpans() > 0 {
		return ps.RejectedSpans(), fmt.Errorf("the backend rejected %d span(s): %s", ps.RejectedSpans(), ps.ErrorMessage())
	}
	return 0, nil
}

func (g *grpcSender) close() error { return g.conn.Close() }

// httpSender: OTLP/HTTP with protobuf bodies.
type httpSender struct {
	url     string
	client  *http.Client
	headers map[string]string
}

func newHTTPSender(c *Config) (*httpSender, error) {
	u, err := url.Parse(c.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("OTLP HTTP endpoint %q: want http(s)://host:port[/path]", c.Endpoint)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/traces"
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if u.Scheme == "https" {
		t, err := tlsConfig(c)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = t
	}
	return &httpSender{url: u.String(), client: &http.Client{Transport: tr, Timeout: c.Timeout}, headers: c.Headers}, nil
}

func (h *httpSender) send(ctx context.Context, td ptrace.Traces) (int64, error) {
	body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		return 0, &sendError{err: fmt.Errorf("encoding OTLP: %w", err), permanent: true}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(body))
	if err != nil {
		return 0, &sendError{err: err, permanent: true}
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	for k, v := range h.headers {
		req.Header.Set(k, v)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return 0, &sendError{err: fmt.Errorf("OTLP HTTP export: %w", err)}
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 == 2 {
		out := ptraceotlp.NewExportResponse()
		if len(rb) > 0 && out.UnmarshalProto(rb) == nil && out.PartialSuccess().RejectedSpans() > 0 {
			ps := out.PartialSuccess()
			return ps.RejectedSpans(), fmt.Errorf("the backend rejected %d span(s): %s", ps.RejectedSpans(), ps.ErrorMessage())
		}
		return 0, nil
	}
	msg := strings.TrimSpace(string(rb))
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	se := &sendError{err: fmt.Errorf("OTLP HTTP export: %s: %s", resp.Status, msg)}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable ||
		resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusBadGateway ||
		resp.StatusCode == http.StatusGatewayTimeout || resp.StatusCode/100 == 5:
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			se.retryAfter = time.Duration(s) * time.Second
		}
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		// credentials can be fixed without losing data: retried
	default:
		se.permanent = true
	}
	return 0, se
}

func (h *httpSender) close() error { h.client.CloseIdleConnections(); return nil }
