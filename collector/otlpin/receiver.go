package otlpin

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/zerotrace/zerotrace/pkg/otlp"
	"github.com/zerotrace/zerotrace/pkg/span"
)

// Config of the receiver. Zero values take the defaults.
type Config struct {
	Node            string
	GRPC            string // listen address of OTLP/gRPC ("" : none)
	HTTP            string // listen address of OTLP/HTTP ("" : none)
	MaxMessageBytes int    // largest request, decompressed (default 4 MiB)
	Limits          otlp.Limits
	// Listen opens a listener (default net.Listen); the collector passes one
	// that listens inside a network namespace.
	Listen func(network, addr string) (net.Listener, error)
}

// Stats count what the receiver did.
type Stats struct {
	Requests      atomic.Int64
	SpansAccepted atomic.Int64
	SpansRejected atomic.Int64 // refused alone (partial success)
	Refused       atomic.Int64 // requests refused whole: too large, too many spans, not OTLP
}

// Receiver serves OTLP until Close.
type Receiver struct {
	cfg   Config
	emit  func(*span.Span)
	log   *slog.Logger
	Stats Stats

	grpcSrv  *grpc.Server
	httpSrv  *http.Server
	GRPCAddr string // bound addresses (port 0 resolved)
	HTTPAddr string
	wg       sync.WaitGroup

	ptraceotlp.UnimplementedGRPCServer
}

// Start listens and serves; emit gets every accepted span (the collector's
// store queue).
func Start(cfg Config, emit func(*span.Span), log *slog.Logger) (*Receiver, error) {
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = 4 << 20
	}
	if cfg.Listen == nil {
		cfg.Listen = net.Listen
	}
	r := &Receiver{cfg: cfg, emit: emit, log: log}
	if cfg.GRPC != "" {
		ln, err := cfg.Listen("tcp", cfg.GRPC)
		if err != nil {
			return nil, fmt.Errorf("OTLP gRPC listener %s: %w", cfg.GRPC, err)
		}
		r.GRPCAddr = ln.Addr().String()
		r.grpcSrv = grpc.NewServer(grpc.MaxRecvMsgSize(cfg.MaxMessageBytes))
		ptraceotlp.RegisterGRPCServer(r.grpcSrv, r)
		r.wg.Add(1)
		go func() { defer r.wg.Done(); r.grpcSrv.Serve(ln) }()
	}
	if cfg.HTTP != "" {
		ln, err := cfg.Listen("tcp", cfg.HTTP)
		if err != nil {
			r.Close()
			return nil, fmt.Errorf("OTLP HTTP listener %s: %w", cfg.HTTP, err)
		}
		r.HTTPAddr = ln.Addr().String()
		mux := http.NewServeMux()
		mux.HandleFunc("/v1/traces", r.serveHTTP)
		r.httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		r.wg.Add(1)
		go func() { defer r.wg.Done(); r.httpSrv.Serve(ln) }()
	}
	log.Info("OTLP receiver", "grpc", r.GRPCAddr, "http", r.HTTPAddr, "max_message_bytes", cfg.MaxMessageBytes)
	return r, nil
}

// Close stops serving; requests in progress finish first (bounded).
func (r *Receiver) Close() error {
	if r.grpcSrv != nil {
		done := make(chan struct{})
		go func() { r.grpcSrv.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			r.grpcSrv.Stop()
		}
	}
	if r.httpSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		r.httpSrv.Shutdown(ctx)
		cancel()
	}
	r.wg.Wait()
	return nil
}

// errRefused: the whole request is refused; code says how.
type errRefused struct {
	code codes.Code
	err  error
}

func (e *errRefused) Error() string { return e.err.Error() }

// take converts and stores one request's spans.
func (r *Receiver) take(td ptrace.Traces) (otlp.Result, error) {
	r.Stats.Requests.Add(1)
	spans, res, err := otlp.Spans(nil, td, r.cfg.Node, r.cfg.Limits)
	if err != nil {
		r.Stats.Refused.Add(1)
		return res, &errRefused{codes.InvalidArgument, err}
	}
	for i := range spans {
		r.emit(&spans[i])
	}
	r.Stats.SpansAccepted.Add(int64(res.Accepted))
	if res.Rejected > 0 {
		r.Stats.SpansRejected.Add(int64(res.Rejected))
		r.log.Warn("OTLP: spans rejected", "rejected", res.Rejected, "reasons", res.Message())
	}
	return res, nil
}

func response(res otlp.Result) ptraceotlp.ExportResponse {
	out := ptraceotlp.NewExportResponse()
	if res.Rejected > 0 {
		out.PartialSuccess().SetRejectedSpans(int64(res.Rejected))
		out.PartialSuccess().SetErrorMessage(res.Message())
	}
	return out
}

// Export implements OTLP/gRPC. A message beyond MaxMessageBytes never gets
// here: gRPC answers ResourceExhausted.
func (r *Receiver) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	res, err := r.take(req.Traces())
	if err != nil {
		var ref *errRefused
		errors.As(err, &ref)
		return ptraceotlp.NewExportResponse(), status.Error(ref.code, ref.err.Error())
	}
	return response(res), nil
}

// serveHTTP implements OTLP/HTTP: POST of an ExportTraceServiceRequest,
// protobuf (application/x-protobuf) or JSON (application/json), plain or
// gzip; the answer is in the request's encoding.
func (r *Receiver) serveHTTP(w http.ResponseWriter, req *http.Request) {
	ct, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
	asJSON := ct == "application/json"
	fail := func(httpCode int, code codes.Code, msg string) {
		r.Stats.Refused.Add(1)
		r.writeStatus(w, asJSON, httpCode, status.New(code, msg))
	}
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		fail(http.StatusMethodNotAllowed, codes.Unimplemented, "OTLP/HTTP takes POST")
		return
	}
	if ct != "application/x-protobuf" && !asJSON {
		fail(http.StatusUnsupportedMediaType, codes.InvalidArgument, fmt.Sprintf("content type %q: want application/x-protobuf or application/json", ct))
		return
	}
	body, err := r.readBody(req)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) || errors.Is(err, errTooLarge) {
			fail(http.StatusRequestEntityTooLarge, codes.ResourceExhausted, fmt.Sprintf("request larger than %d bytes: send smaller batches", r.cfg.MaxMessageBytes))
			return
		}
		fail(http.StatusBadRequest, codes.InvalidArgument, err.Error())
		return
	}
	td, err := otlp.Decode(body, asJSON)
	if err != nil {
		fail(http.StatusBadRequest, codes.InvalidArgument, err.Error())
		return
	}
	res, err := r.take(td)
	if err != nil {
		r.writeStatus(w, asJSON, http.StatusBadRequest, status.New(codes.InvalidArgument, err.Error()))
		return
	}
	resp := response(res)
	var out []byte
	if asJSON {
		out, err = resp.MarshalJSON()
	} else {
		out, err = resp.MarshalProto()
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(http.StatusOK)
	w.Write(out)
}

var errTooLarge = errors.New("request too large")

// readBody reads at most MaxMessageBytes, decompressing gzip.
func (r *Receiver) readBody(req *http.Request) ([]byte, error) {
	max := int64(r.cfg.MaxMessageBytes)
	var src io.Reader = http.MaxBytesReader(nil, req.Body, max)
	switch enc := req.Header.Get("Content-Encoding"); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(src)
		if err != nil {
			return nil, fmt.Errorf("gzip body: %w", err)
		}
		defer zr.Close()
		src = zr
	default:
		return nil, fmt.Errorf("content encoding %q: want gzip or none", enc)
	}
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(src, max+1))
	if err != nil {
		return nil, err
	}
	if n > max {
		return nil, errTooLarge
	}
	return buf.Bytes(), nil
}

// writeStatus answers with a google.rpc.Status body, as OTLP/HTTP asks.
func (r *Receiver) writeStatus(w http.ResponseWriter, asJSON bool, httpCode int, st *status.Status) {
	var b []byte
	ct := "application/x-protobuf"
	if asJSON {
		b, _ = protojson.Marshal(st.Proto())
		ct = "application/json"
	} else {
		b, _ = proto.Marshal(st.Proto())
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(httpCode)
	w.Write(b)
}
