// Command eventfx runs an embedded Kafka-protocol broker and operates on
// topics and the poison queue: broker, publish, tail, poison list, poison
// stats, poison replay. Run `eventfx --help`.
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
