package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/eventfx/eventfx/internal/broker"
)

func newBrokerCmd() *cobra.Command {
	var cfg broker.Config
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "Run an embedded Kafka-protocol broker (development, not production)",
		Long: `Runs franz-go's kfake, a Kafka-protocol broker, so several eventfx processes
can share one broker with no Kafka installed. Topics are created on first use.
With --data-dir, topics, records and committed group offsets survive a restart;
SIGINT/SIGTERM close it cleanly, saving its state.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := slog.New(slog.NewTextHandler(os.Stderr, nil))
			b, err := broker.Start(cfg)
			if err != nil {
				return err
			}
			log.Info("broker listening", "addr", b.Addr(), "data_dir", cfg.DataDir, "partitions", cfg.Partitions)
			fmt.Fprintln(cmd.OutOrStdout(), "eventfx broker listening on", b.Addr())
			<-cmd.Context().Done()
			log.Info("broker stopping")
			b.Close()
			log.Info("broker stopped")
			return nil
		},
	}
	cmd.Flags().StringVar(&cfg.Addr, "addr", "127.0.0.1:9092", "listen address")
	cmd.Flags().StringVar(&cfg.DataDir, "data-dir", ".eventfx/kafka", `directory for persistent data ("" keeps everything in memory)`)
	cmd.Flags().IntVar(&cfg.Partitions, "partitions", broker.DefaultPartitions, "partitions of auto-created topics")
	cmd.Flags().BoolVar(&cfg.SyncWrites, "sync-writes", false, "fsync every write (survives a crash of the machine; slower)")
	return cmd
}
