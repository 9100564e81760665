// Command eventfx runs an embedded Kafka-protocol broker (with a Schema
// Registry) and operates on topics, the poison queue and the outbox:
// broker, publish, tail, poison list, poison stats, poison replay, bench,
// outbox relay, outbox status, outbox retry, console. Run `eventfx --help`.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd := newRootCmd()
	if err := cmd.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "eventfx:", err)
		os.Exit(1)
	}
}
