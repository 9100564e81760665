package main

import (
	"github.com/spf13/cobra"

	"github.com/eventfx/eventfx/config"
)

// defaultBrokers is used when neither --brokers, the config nor the
// environment names brokers.
const defaultBrokers = "127.0.0.1:9092"

// globals are the flags every command takes.
type globals struct {
	brokers    []string
	configPath string
}

func newRootCmd() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "eventfx",
		Short:         "eventfx: embedded Kafka broker, publish, tail and poison-queue operations",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringSliceVar(&g.brokers, "brokers", nil, "Kafka brokers, host:port,… (default: kafka.brokers from --config/EVENTFX_*, else "+defaultBrokers+")")
	root.PersistentFlags().StringVar(&g.configPath, "config", "", "YAML config file (default $EVENTFX_CONFIG)")
	root.AddCommand(newBrokerCmd(), newPublishCmd(g), newTailCmd(g), newPoisonCmd(g), newBenchCmd(g), newOutboxCmd(g), newConsoleCmd(g))
	return root
}

// resolveBrokers returns --brokers, else the config's brokers when they were
// set in a file or the environment, else defaultBrokers. The config's
// default "embedded" means nothing to a CLI talking to another process.
func (g *globals) resolveBrokers() ([]string, config.Config, error) {
	cfg, err := config.Load(g.configPath)
	if err != nil {
		return nil, cfg, err
	}
	cfg = cfg.WithDefaults()
	if len(g.brokers) > 0 {
		return g.brokers, cfg, nil
	}
	// config.Load applied the file and EVENTFX_KAFKA_BROKERS.
	if len(cfg.Kafka.Brokers) > 0 && !(len(cfg.Kafka.Brokers) == 1 && cfg.Kafka.Brokers[0] == config.Embedded) {
		return cfg.Kafka.Brokers, cfg, nil
	}
	return []string{defaultBrokers}, cfg, nil
}
