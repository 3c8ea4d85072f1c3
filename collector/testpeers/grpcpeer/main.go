// Command grpcpeer is a gRPC health server and client for capture tests.
//
//	grpcpeer serve ADDR                    serve grpc.health.v1.Health on ADDR
//	grpcpeer check ADDR SERVICE XRID [N [PAR PAD]]
//	                                       N (default 1) unary Checks on one connection with
//	                                       x-request-id XRID-i; prints each status code. With PAR,
//	                                       PAR calls at a time, each with a traceparent whose
//	                                       trace id ends in i (hex) and the service name padded
//	                                       with PAD bytes ("SERVICE.i.xxx…")
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "grpcpeer:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 2 {
		return fmt.Errorf("usage: grpcpeer serve ADDR | check ADDR SERVICE XRID")
	}
	switch args[0] {
	case "serve":
		ln, err := net.Listen("tcp", args[1])
		if err != nil {
			return fmt.Errorf("listening: %w", err)
		}
		s := grpc.NewServer()
		h := health.NewServer()
		h.SetServingStatus("reviews", healthpb.HealthCheckResponse_SERVING)
		healthpb.RegisterHealthServer(s, h)
		return s.Serve(ln)
	case "check":
		if len(args) < 4 {
			return fmt.Errorf("usage: grpcpeer check ADDR SERVICE XRID")
		}
		conn, err := grpc.NewClient(args[1], grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return fmt.Errorf("dialing: %w", err)
		}
		defer conn.Close()
		n := 1
		if len(args) > 4 {
			if n, err = strconv.Atoi(args[4]); err != nil {
				return fmt.Errorf("count: %w", err)
			}
		}
		client := healthpb.NewHealthClient(conn)
		if len(args) > 6 {
			return parallel(client, args[2], args[3], n, args[5], args[6])
		}
		for i := 1; i <= n; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			ctx = metadata.AppendToOutgoingContext(ctx, "x-request-id", fmt.Sprintf("%s-%d", args[3], i))
			_, err = client.Check(ctx, &healthpb.HealthCheckRequest{Service: args[2]})
			cancel()
			fmt.Println(status.Code(err))
		}
		return nil
	}
	return fmt.Errorf("unknown command %q", args[0])
}

// parallel makes n Checks, par at a time, each with x-request-id XRID-i, a
// traceparent whose trace id ends in i and a service name padded to pad
// bytes, and prints their status codes in call order.
func parallel(client healthpb.HealthClient, service, xrid string, n int, par, pad string) error {
	p, err := strconv.Atoi(par)
	if err != nil {
		return fmt.Errorf("parallel calls: %w", err)
	}
	size, err := strconv.Atoi(pad)
	if err != nil {
		return fmt.Errorf("padding: %w", err)
	}
	codes := make([]string, n+1)
	sem := make(chan struct{}, p)
	var wg sync.WaitGroup
	for i := 1; i <= n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			ctx = metadata.AppendToOutgoingContext(ctx, "x-request-id", fmt.Sprintf("%s-%d", xrid, i),
				"traceparent", fmt.Sprintf("00-%032x-%016x-01", i, i))
			name := fmt.Sprintf("%s.%d.", service, i)
			name += strings.Repeat("x", max(0, size-len(name)))
			_, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: name})
			codes[i] = status.Code(err).String()
		}()
	}
	wg.Wait()
	for _, c := range codes[1:] {
		fmt.Println(c)
	}
	return nil
}
