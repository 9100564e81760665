package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/eventfx/eventfx/internal/broker"
)

func newBrokerCmd() *cobra.Command {
	var (
		cfg      broker.Config
		tlsFiles broker.TLSFiles
		sasl     []string
	)
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "Run an embedded Kafka-protocol broker (development, not production)",
		Long: `Runs franz-go's kfake, a Kafka-protocol broker, so several eventfx processes
can share one broker with no Kafka installed. Topics are created on first use.
With --data-dir, topics, records and committed group offsets survive a restart;
SIGINT/SIGTERM close it cleanly, saving its state.

So that development mirrors production, it can require TLS (--tls-cert and
--tls-key; with --tls-client-ca, client certificates of that CA too) and SASL
(--sasl MECHANISM:USER:PASSWORD, repeatable; PLAIN, SCRAM-SHA-256 or
SCRAM-SHA-512).

With --schema-registry ADDR it also serves Confluent's Schema Registry REST
API at ADDR (plain HTTP); with --data-dir, registered schemas survive a
restart too. It checks Avro schemas for compatibility (BACKWARD unless
changed with PUT /config); JSON Schema and Protobuf schemas are stored
unchecked.`,
		Example: `  eventfx broker --schema-registry 127.0.0.1:8085
  eventfx broker --sasl SCRAM-SHA-256:alice:s3cret
  eventfx broker --tls-cert server.pem --tls-key server-key.pem --tls-client-ca ca.pem`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := brokerSecurity(&cfg, tlsFiles, sasl); err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, nil))
			b, err := broker.Start(cfg)
			if err != nil {
				return err
			}
			attrs := []any{"addr", b.Addr(), "data_dir", cfg.DataDir, "partitions", cfg.Partitions, "tls", cfg.TLS != nil}
			if cfg.TLS != nil {
				attrs = append(attrs, "tls_client_auth", cfg.TLS.ClientCAs != nil)
			}
			if len(cfg.SASL) > 0 {
				users := make([]string, len(cfg.SASL))
				for i, u := range cfg.SASL {
					users[i] = u.String() // mechanism and name, never the password
				}
				attrs = append(attrs, "sasl_users", strings.Join(users, ","))
			}
			if u := b.RegistryURL(); u != "" {
				attrs = append(attrs, "schema_registry", u)
			}
			log.Info("broker listening", attrs...)
			fmt.Fprintln(cmd.OutOrStdout(), "eventfx broker listening on", b.Addr())
			if u := b.RegistryURL(); u != "" {
				fmt.Fprintln(cmd.OutOrStdout(), "eventfx schema registry listening on", u)
			}
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
	cmd.Flags().StringVar(&tlsFiles.CertFile, "tls-cert", "", "PEM certificate (chain) of the broker: accept TLS connections only (needs --tls-key)")
	cmd.Flags().StringVar(&tlsFiles.KeyFile, "tls-key", "", "PEM private key of --tls-cert")
	cmd.Flags().StringVar(&tlsFiles.ClientCAFile, "tls-client-ca", "", "PEM CA certificates: require and verify client certificates they signed (needs --tls-cert)")
	cmd.Flags().StringVar(&cfg.SchemaRegistry, "schema-registry", "", "also serve Confluent's Schema Registry REST API at this address (host:port)")
	cmd.Flags().StringArrayVar(&sasl, "sasl", nil, "require SASL, accepting user USER with PASSWORD by MECH (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512); repeatable, as MECH:USER:PASSWORD")
	return cmd
}

// brokerSecurity applies the TLS and SASL flags to cfg. Its errors name the
// flag and never contain a password.
func brokerSecurity(cfg *broker.Config, f broker.TLSFiles, sasl []string) error {
	switch {
	case f.CertFile != "" && f.KeyFile == "":
		return fmt.Errorf("--tls-cert needs --tls-key")
	case f.KeyFile != "" && f.CertFile == "":
		return fmt.Errorf("--tls-key needs --tls-cert")
	case f.ClientCAFile != "" && f.CertFile == "":
		return fmt.Errorf("--tls-client-ca needs --tls-cert and --tls-key")
	}
	if f.CertFile != "" {
		for _, x := range []struct{ flag, file string }{{"--tls-cert", f.CertFile}, {"--tls-key", f.KeyFile}, {"--tls-client-ca", f.ClientCAFile}} {
			if x.file == "" {
				continue
			}
			if _, err := os.Stat(x.file); err != nil {
				return fmt.Errorf("%s: %w", x.flag, err)
			}
		}
		t, err := broker.LoadTLS(f)
		if err != nil {
			return fmt.Errorf("--tls-cert/--tls-key/--tls-client-ca: %w", err)
		}
		cfg.TLS = t
	}
	seen := map[string]bool{}
	for i, s := range sasl {
		u, err := broker.ParseSASLUser(s)
		if err != nil {
			return fmt.Errorf("--sasl (#%d): %w", i+1, err)
		}
		if seen[u.String()] {
			return fmt.Errorf("--sasl: %s given twice", u)
		}
		seen[u.String()] = true
		cfg.SASL = append(cfg.SASL, u)
	}
	return nil
}
