// Command kafkapeer is a Kafka broker and clients for capture tests, on
// franz-go: its in-process kfake cluster and its kgo client.
//
//	kafkapeer broker ADDR TOPIC            a one-broker cluster on ADDR with TOPIC (one partition)
//	kafkapeer produce ADDR TOPIC N         N records, each acknowledged before the next
//	kafkapeer consume ADDR TOPIC N         read N records from the start of TOPIC
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "kafkapeer:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 3 {
		return fmt.Errorf("usage: kafkapeer broker|produce|consume ADDR TOPIC [N]")
	}
	addr, topic := args[1], args[2]
	n := 1
	if len(args) > 3 {
		var err error
		if n, err = strconv.Atoi(args[3]); err != nil {
			return fmt.Errorf("count: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	switch args[0] {
	case "broker":
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic),
			kfake.ListenFn(func(network, _ string) (net.Listener, error) { return net.Listen(network, addr) }))
		if err != nil {
			return fmt.Errorf("starting the cluster: %w", err)
		}
		defer c.Close()
		fmt.Println("READY")
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		return nil
	case "produce":
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic), kgo.DisableIdempotentWrite(),
			kgo.ProducerLinger(0), kgo.RequiredAcks(kgo.LeaderAck()))
		if err != nil {
			return fmt.Errorf("client: %w", err)
		}
		defer cl.Close()
		for i := 0; i < n; i++ {
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprintf("order-%d", i))}).FirstErr(); err != nil {
				return fmt.Errorf("producing: %w", err)
			}
		}
		fmt.Println("OK")
	case "consume":
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		if err != nil {
			return fmt.Errorf("client: %w", err)
		}
		defer cl.Close()
		got := 0
		for got < n {
			fs := cl.PollFetches(ctx)
			if err := fs.Err0(); err != nil {
				return fmt.Errorf("fetching: %w", err)
			}
			got += fs.NumRecords()
		}
		fmt.Println(got)
	default:
		return fmt.Errorf("unknown command %q", args[0])
	}
	return nil
}
