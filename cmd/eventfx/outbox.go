package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/fx"

	"github.com/eventfx/eventfx/app"
	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/outbox"
	_ "github.com/eventfx/eventfx/outbox/sqlite" // sqlite: DSNs
)

func newOutboxCmd(g *globals) *cobra.Command {
	var dsn string
	cmd := &cobra.Command{
		Use:   "outbox",
		Short: "Run the transactional outbox's relay, show its backlog, retry set-aside rows",
		Long: `The outbox is a table (on PostgreSQL, or the embedded SQLite store) that
services write their events into, in the transaction of their own data
(package outbox). "outbox relay" publishes the committed rows to Kafka and
deletes them once acknowledged; "outbox status" shows what waits, per slot,
and the rows set aside for a permanent failure with their reasons; "outbox
retry" puts set-aside rows back.

The database is --dsn, else outbox.dsn from --config or EVENTFX_OUTBOX_DSN.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.PersistentFlags().StringVar(&dsn, "dsn", "", "the outbox database: a PostgreSQL connection string or sqlite:PATH (default: outbox.dsn from --config/EVENTFX_OUTBOX_DSN)")
	cmd.AddCommand(newOutboxRelayCmd(g, &dsn), newOutboxStatusCmd(g, &dsn), newOutboxRetryCmd(g, &dsn))
	return cmd
}

// outboxConfig is the config with --dsn applied and the outbox defaults.
func outboxConfig(g *globals, dsn string) (config.Config, error) {
	cfg, err := config.Load(g.configPath)
	if err != nil {
		return cfg, err
	}
	if dsn != "" {
		cfg.Outbox.DSN = dsn
	}
	cfg.Outbox = cfg.Outbox.WithDefaults()
	return cfg, cfg.Outbox.RequireDSN()
}

// openOutbox connects to the outbox's database.
func openOutbox(ctx context.Context, cfg config.Config) (*outbox.Outbox, error) {
	ob, err := outbox.Connect(cfg.Outbox)
	if err != nil {
		return nil, err
	}
	if err := ob.Ping(ctx, cfg.Outbox); err != nil {
		ob.Close()
		return nil, err
	}
	return ob, nil
}

func newOutboxRelayCmd(g *globals, dsn *string) *cobra.Command {
	var httpAddr string
	cmd := &cobra.Command{
		Use:   "relay",
		Short: "Publish the outbox's committed rows to Kafka until SIGINT/SIGTERM",
		Long: `Runs the outbox relay standalone: every outbox.poll_interval (and on a NOTIFY
with outbox.notify) it publishes the committed rows, slot by slot, in batches
of outbox.batch_size, and deletes them once the broker acknowledged them.
Several relays share the slots. SIGINT/SIGTERM let the batches in flight
finish, then it exits 0. With --http-addr, /healthz, /readyz and /metrics
are served there.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := outboxConfig(g, *dsn)
			if err != nil {
				return err
			}
			brokers, _, err := g.resolveBrokers()
			if err != nil {
				return err
			}
			cfg.Kafka.Brokers = brokers
			cfg.Outbox.Disabled = false
			modules := []fx.Option{app.Core(cfg), app.KafkaModule, app.PublisherModule, app.OutboxModule}
			if httpAddr != "" {
				cfg.HTTP.Addr = httpAddr
				modules[0] = app.Core(cfg)
				modules = append(modules, app.HTTPModule)
			}
			a := fx.New(modules...)
			if err := a.Err(); err != nil {
				return err
			}
			start, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			if err := a.Start(start); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "eventfx outbox relay running (brokers %s, database %s)\n", strings.Join(brokers, ","), cfg.Outbox.RedactedDSN())
			select {
			case <-cmd.Context().Done():
			case sig := <-a.Wait():
				if sig.ExitCode != 0 {
					return fmt.Errorf("outbox relay stopped: exit code %d", sig.ExitCode)
				}
			}
			stop, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
			defer cancel()
			return a.Stop(stop)
		},
	}
	cmd.Flags().StringVar(&httpAddr, "http-addr", "", "serve /healthz, /readyz and /metrics on this address")
	return cmd
}

// withOutbox runs fn on the outbox's database (the --dsn flag, else
// outbox.dsn), within outboxCommandTimeout.
func withOutbox(cmd *cobra.Command, g *globals, dsn string, fn func(context.Context, *outbox.Outbox) error) error {
	cfg, err := outboxConfig(g, dsn)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), outboxCommandTimeout)
	defer cancel()
	ob, err := openOutbox(ctx, cfg)
	if err != nil {
		return err
	}
	defer ob.Close()
	return fn(ctx, ob)
}

// outboxCommandTimeout bounds `outbox status` and `outbox retry`.
const outboxCommandTimeout = 30 * time.Second

func newOutboxStatusCmd(g *globals, dsn *string) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the outbox's backlog per slot and its set-aside rows with their reasons",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withOutbox(cmd, g, *dsn, func(ctx context.Context, ob *outbox.Outbox) error {
				st, err := ob.Status(ctx)
				if err != nil {
					return err
				}
				if asJSON {
					return json.NewEncoder(cmd.OutOrStdout()).Encode(st)
				}
				printStatus(cmd.OutOrStdout(), st, time.Now())
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status as one JSON object")
	return cmd
}

// printStatus writes st for a terminal.
func printStatus(w io.Writer, st outbox.Status, now time.Time) {
	age := "-"
	if !st.Oldest.IsZero() {
		age = now.Sub(st.Oldest).Round(time.Millisecond).String()
	}
	fmt.Fprintf(w, "backlog: %d row(s), oldest %s old; set aside: %d row(s)\n", st.Rows, age, len(st.Aside))
	for _, s := range st.Slots {
		fmt.Fprintf(w, "slot %2d: %d row(s), oldest %s old\n", s.Slot, s.Rows, now.Sub(s.Oldest).Round(time.Millisecond))
	}
	for _, a := range st.Aside {
		fmt.Fprintf(w, "set aside: %s topic=%s key=%q at=%s reason=%s\n", a.ID, a.Topic, a.Key, a.SetAsideAt.UTC().Format(time.RFC3339), a.Reason)
	}
}

func newOutboxRetryCmd(g *globals, dsn *string) *cobra.Command {
	var ids []string
	cmd := &cobra.Command{
		Use:   "retry",
		Short: "Put set-aside rows back into the outbox (all, or those of --id)",
		Long: `Moves rows the relay set aside for a permanent failure back into the outbox,
once their cause is fixed: all of them, or those given with --id. Each goes
to the end of its key's order. A row set aside again keeps its reason in
"outbox status".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withOutbox(cmd, g, *dsn, func(ctx context.Context, ob *outbox.Outbox) error {
				n, err := ob.Retry(ctx, ids...)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%d row(s) back in the outbox\n", n)
				return nil
			})
		},
	}
	cmd.Flags().StringSliceVar(&ids, "id", nil, "retry only the rows with these event IDs (repeatable)")
	return cmd
}
