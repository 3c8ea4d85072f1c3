// Command grpcpeer is a gRPC health server and client for capture tests.
//
//	grpcpeer serve ADDR                    serve grpc.health.v1.Health on ADDR
//	grpcpeer check ADDR SERVICE XRID [N]   N (default 1) unary Checks on one connection with
//	                                       x-request-id XRID-i; prints each status code
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
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
