package config

import (
	"fmt"
	"log/slog"
)

// Console configures `eventfx console`, the web console; its flags
// override these keys.
type Console struct {
	// Addr is where the console listens, host:port. Empty (the default):
	// 127.0.0.1:8088, loopback only (the command's --addr default).
	Addr string `koanf:"addr"`
	// Token, when set, is required ("Authorization: Bearer <token>") by
	// every request that changes something (a replay). Default "": none.
	// It is a secret: printed and logged as "[redacted]".
	Token string `koanf:"token"`
	// ReadOnly refuses every request that changes something. Default
	// false.
	ReadOnly bool `koanf:"read_only"`
}

func (p *problems) console(c Console) {
	if c.Addr != "" {
		p.hostPort("console.addr", c.Addr, true)
	}
}

// plainConsole prints the fields of Console without its methods.
type plainConsole Console

func (c Console) redacted() Console { c.Token = redact(c.Token); return c }

// String formats c with its token redacted, as %+v would.
func (c Console) String() string { return fmt.Sprintf("%+v", plainConsole(c.redacted())) }

// GoString formats c with its token redacted, as %#v would.
func (c Console) GoString() string { return fmt.Sprintf("%#v", plainConsole(c.redacted())) }

// LogValue logs c with its token redacted.
func (c Console) LogValue() slog.Value { return slog.StringValue(c.String()) }
