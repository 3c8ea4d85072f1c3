// Command reviews is the otel variant's reviews service: the go variant's
// net/http server, instrumented with the OpenTelemetry Go SDK — otelhttp
// around the handler (a server span per request, its parent taken from the
// traceparent productpage sends) and around the client transport (a client
// span per call to ratings, whose traceparent names it) — exporting over
// OTLP/HTTP to its node's collector (OTEL_EXPORTER_OTLP_ENDPOINT,
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, as a Kubernetes pod spec
// would set them). X-ZT-Marker is the tests' ground truth: copied onto the
// ratings call, logged with the connection (a ZTGT line), and set on the
// server span as the attribute zt.marker, which the tracer never reads.
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

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

type connKey struct{}

// conn is what the server remembers of one client connection.
type conn struct {
	remote, local string
	requests      atomic.Int64
}

var client = &http.Client{Timeout: 10 * time.Second,
	Transport: otelhttp.NewTransport(&http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: time.Minute})}

func reviews(w http.ResponseWriter, r *http.Request) {
	c := r.Context().Value(connKey{}).(*conn)
	marker := r.Header.Get("X-ZT-Marker")
	m := marker
	if m == "" {
		m = "-"
	}
	trace.SpanFromContext(r.Context()).SetAttributes(attribute.String("zt.marker", m))
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
	ctx := context.Background()
	exp, err := otlptracehttp.New(ctx) // endpoint, protocol, headers from OTEL_EXPORTER_OTLP_*
	if err != nil {
		log.Fatal(err)
	}
	res, err := resource.New(ctx, resource.WithFromEnv(), resource.WithTelemetrySDK())
	if err != nil {
		log.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithSampler(sdktrace.AlwaysSample()),
		sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(200*time.Millisecond)))
	defer tp.Shutdown(ctx)
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})

	mux := http.NewServeMux()
	mux.HandleFunc("/reviews/", reviews)
	handler := otelhttp.NewHandler(mux, "reviews", otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
		return r.Method + " /reviews/{id}"
	}))
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second,
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
