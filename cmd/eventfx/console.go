package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/eventfx/eventfx/handlers"
	"github.com/eventfx/eventfx/internal/console"
	"github.com/eventfx/eventfx/schema"
)

// defaultConsoleAddr is where the console listens: loopback only.
const defaultConsoleAddr = "127.0.0.1:8088"

// consoleMemoryLimit is the console's soft memory limit (the Go runtime's,
// see runtime/debug.SetMemoryLimit) unless GOMEMLIMIT sets another.
const consoleMemoryLimit = 128 << 20

// consoleTokenEnv is the variable of the config key console.token: the
// token may come from there instead of --token, which other users of the
// machine can read in the process list.
const consoleTokenEnv = "EVENTFX_CONSOLE_TOKEN"

type consoleOpts struct {
	addr        string
	token       string
	readOnly    bool
	poisonTopic string
	sampleEvery time.Duration
	registry    string
}

func newConsoleCmd(g *globals) *cobra.Command {
	var o consoleOpts
	cmd := &cobra.Command{
		Use:   "console [--addr 127.0.0.1:8088] [--token T] [--read-only]",
		Short: "Serve the web console: topology, lag, poison groups and replay, messages, conversations",
		Long: `Serves the web console and its JSON API on --addr (loopback by default):
the services that announced themselves and their handlers and topics, each
handler's lag per partition with its state, the poison queue's failure
groups with dry-run and replay (recorded in the replay ledger, never twice),
a topic browser, and every record of a conversation (correlation ID).

With --token (or console.token in --config, or $` + consoleTokenEnv + `), every request that changes something needs
"Authorization: Bearer <token>"; --read-only refuses them all. Reads never
change anything. See docs/console.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, _, err := net.SplitHostPort(o.addr); err != nil && cmd.Flags().Changed("addr") {
				return fmt.Errorf("--addr: %q is not host:port: %w", o.addr, err)
			}
			if o.sampleEvery < 100*time.Millisecond {
				return fmt.Errorf("--sample-every: %s is under 100ms", o.sampleEvery)
			}
			if os.Getenv("GOMEMLIMIT") == "" {
				// The console keeps little (samples, one answer at a
				// time): let the collector return what reads left.
				debug.SetMemoryLimit(consoleMemoryLimit)
			}
			ctx := cmd.Context()
			c, err := g.connect(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			// The flags win over the config's console block.
			if !cmd.Flags().Changed("addr") && c.cfg.Console.Addr != "" {
				o.addr = c.cfg.Console.Addr
			}
			if o.token == "" {
				o.token = c.cfg.Console.Token
			}
			o.readOnly = o.readOnly || c.cfg.Console.ReadOnly
			if _, _, err := net.SplitHostPort(o.addr); err != nil {
				return fmt.Errorf("--addr: %q is not host:port: %w", o.addr, err)
			}
			topic := o.poisonTopic
			if topic == "" {
				topic = c.cfg.Poison.Topic
			}
			opts := console.Options{Client: c.Client, PoisonTopic: topic, Token: o.token, ReadOnly: o.readOnly, SampleEvery: o.sampleEvery}
			if o.registry != "" || c.cfg.SchemaRegistry.URL != "" {
				reg, err := openRegistry(o.registry, c.cfg)
				if err != nil {
					return err
				}
				defer reg.Close()
				opts.Decode = (&consoleDecoder{reg: reg}).decode
			}
			con, err := console.New(opts)
			if err != nil {
				return err
			}
			defer con.Close()
			l, err := net.Listen("tcp", o.addr)
			if err != nil {
				return fmt.Errorf("listen on %s: %w", o.addr, err)
			}
			status := cmd.ErrOrStderr()
			fmt.Fprintf(status, "eventfx console on http://%s (poison topic %s)\n", l.Addr(), topic)
			if host, _, _ := net.SplitHostPort(o.addr); !isLoopbackHost(host) && o.token == "" && !o.readOnly {
				fmt.Fprintln(status, "warning: the console listens beyond loopback with no --token: anyone who reaches it can replay poisoned messages")
			}
			go con.Run(ctx)
			err = con.Serve(ctx, l)
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		},
	}
	cmd.Flags().StringVar(&o.addr, "addr", defaultConsoleAddr, "listen address, host:port (default: console.addr from --config, else "+defaultConsoleAddr+")")
	cmd.Flags().StringVar(&o.token, "token", "", "require this bearer token on every request that changes something (default: console.token from --config, or $"+consoleTokenEnv+")")
	cmd.Flags().BoolVar(&o.readOnly, "read-only", false, "refuse every request that changes something (403; also console.read_only)")
	cmd.Flags().StringVar(&o.poisonTopic, "poison-topic", "", "poison topic (default: poison.topic from --config/EVENTFX_*, else eventfx.poison)")
	cmd.Flags().DurationVar(&o.sampleEvery, "sample-every", console.DefaultSampleEvery, "how often to read announcements, offsets and new poison records")
	registryFlag(cmd, &o.registry)
	return cmd
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// consoleDecoder decodes framed payloads for the console's views. A
// registry that did not answer is not asked again for
// registryRetryAfter (the views show the payloads as they are, with the
// reason), so that one page of messages cannot wait for it once per
// message.
type consoleDecoder struct {
	reg *schema.Registry

	mu        sync.Mutex
	downUntil time.Time
	downErr   error
}

// registryRetryAfter is how long the console leaves a registry that did
// not answer alone.
const registryRetryAfter = 30 * time.Second

func (d *consoleDecoder) decode(payload []byte) (int, []byte, error) {
	d.mu.Lock()
	if time.Now().Before(d.downUntil) {
		err := d.downErr
		d.mu.Unlock()
		return 0, nil, err
	}
	d.mu.Unlock()
	v, err := d.reg.DecodeJSON(payload)
	if errors.Is(err, handlers.ErrCodecUnavailable) {
		d.mu.Lock()
		d.downUntil, d.downErr = time.Now().Add(registryRetryAfter), fmt.Errorf("not asked again before %s: %w", time.Now().Add(registryRetryAfter).UTC().Format(time.TimeOnly), err)
		d.mu.Unlock()
	}
	return v.ID, v.JSON, err
}
