package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"go.uber.org/fx"

	"github.com/eventfx/eventfx/config"
	"github.com/eventfx/eventfx/internal/routing"
)

// ExitError is returned by Run when the app asked to exit with a non-zero
// code (for example after its router died).
type ExitError struct{ Code int }

func (e ExitError) Error() string { return fmt.Sprintf("exit code %d", e.Code) }

// Run is a service's main: it loads the config (--config FILE in args, else
// EVENTFX_CONFIG, then EVENTFX_* overrides), builds an fx app from Core and
// the modules that build returns for that config, starts it, waits for
// SIGINT/SIGTERM (or an fx.Shutdowner), and stops it gracefully. It returns
// the first error, told by its cause (the mistake in eventfx's words, not
// fx's account of where it was found; that is logged at debug level) and
// logs it nowhere: main prints it, once, and exits non-zero.
//
//	func main() {
//		if err := app.Run(os.Args[1:], func(config.Config) fx.Option {
//			return fx.Options(app.KafkaModule, app.SubscriberModule, handlers.Register(...))
//		}); err != nil {
//			fmt.Fprintln(os.Stderr, err)
//			os.Exit(1)
//		}
//	}
func Run(args []string, build func(config.Config) fx.Option) error {
	fs := flag.NewFlagSet("eventfx", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	path := fs.String("config", "", "YAML config file (default $EVENTFX_CONFIG)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stdout, "usage: [--config FILE]\n\nConfiguration: a YAML file (--config or $EVENTFX_CONFIG), each key overridable by EVENTFX_<PATH> environment variables.")
			return nil
		}
		return fmt.Errorf("%w (usage: --config FILE)", err)
	}
	cfg, err := config.LoadFrom(*path, os.Environ())
	if err != nil {
		return err
	}
	cfg = cfg.WithDefaults()
	// Run returns start errors rather than logging them: core(cfg, false).
	a := fx.New(core(cfg, false), build(cfg), warnIfEmbedded(cfg))
	startCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Start also fails with fx.New's error, if any, and logs fx's whole
	// account of it at debug level.
	if err := a.Start(startCtx); err != nil {
		return describe(err)
	}
	sig := <-a.Wait()
	stopCtx, cancelStop := context.WithTimeout(context.Background(), cfg.ShutdownTimeout+routing.CloseGrace+5*time.Second)
	defer cancelStop()
	stopErr := describe(a.Stop(stopCtx))
	if sig.ExitCode != 0 {
		return errors.Join(ExitError{Code: sig.ExitCode}, stopErr)
	}
	return stopErr
}

// warnIfEmbedded warns a service started without kafka.brokers: it runs a
// private broker that no other process shares — right for examples and
// tests, surprising for a service.
func warnIfEmbedded(cfg config.Config) fx.Option {
	if len(cfg.Kafka.Brokers) != 1 || cfg.Kafka.Brokers[0] != config.Embedded {
		return fx.Options()
	}
	return fx.Invoke(func(l *slog.Logger) {
		l.Warn("kafka.brokers is [embedded]: this process runs its own in-process broker, which no other process sees; " +
			"set kafka.brokers (or EVENTFX_KAFKA_BROKERS) to `eventfx broker`'s address or a Kafka cluster")
	})
}
