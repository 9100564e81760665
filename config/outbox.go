package config

import (
	"cmp"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Defaults of the outbox keys, as documented on the fields.
const (
	defaultOutboxPollInterval = time.Second
	defaultOutboxBatchSize    = 500
	defaultOutboxWorkers      = 4
	defaultOutboxMaxBackoff   = 5 * time.Second
	defaultInboxRetention     = 7 * 24 * time.Hour
)

// Outbox configures the transactional outbox on PostgreSQL or the
// embedded SQLite store (package outbox, app.OutboxModule, `eventfx
// outbox`). A service that does not use
// the outbox leaves it empty.
type Outbox struct {
	// DSN is the PostgreSQL connection string (a URL or key=value pairs,
	// as pgx and libpq read them), or "sqlite:PATH" / "sqlite::memory:"
	// for the embedded SQLite store (package outbox/sqlite). Required by
	// the outbox module and the outbox commands; empty otherwise. It may
	// carry a password: it is printed redacted.
	DSN string `koanf:"dsn"`
	// PollInterval is how often the relay looks for rows committed by
	// other processes (or by transactions eventfx did not commit). Rows
	// committed through outbox.Outbox.Tx wake it at once. Default 1s.
	PollInterval time.Duration `koanf:"poll_interval"`
	// BatchSize is the most rows the relay takes from one slot and
	// publishes as one batch. Default 500.
	BatchSize int `koanf:"batch_size"`
	// Workers is how many slots one relay drains at the same time, each on
	// its own database connection. Default 4.
	Workers int `koanf:"workers"`
	// Notify makes outbox.Outbox.Tx send a PostgreSQL NOTIFY after each
	// commit (never inside the transaction), and the relay LISTEN for it,
	// so relays in other processes wake at once too. Default false.
	Notify bool `koanf:"notify"`
	// MaxBackoff bounds the relay's wait between tries while the database
	// or the broker is down. Default 5s.
	MaxBackoff time.Duration `koanf:"max_backoff"`
	// SkipSchema stops eventfx from creating its tables at start (for
	// teams that apply outbox/schema.sql with their own migrations).
	// Default false: the schema is created if missing (idempotent).
	SkipSchema bool `koanf:"skip_schema"`
	// Disabled runs no relay in the service: it still publishes into the
	// outbox, and a relay elsewhere (`eventfx outbox relay`) drains it.
	// Default false.
	Disabled bool `koanf:"disabled"`
	// ExactlyOnce publishes each batch in a Kafka transaction with a
	// relay-state record (outbox.StateTopic), so a relay taking over after
	// a crash does not publish again what the dead one published:
	// read_committed consumers see each event once. The broker must
	// support transactions. Default false (at-least-once).
	ExactlyOnce bool `koanf:"exactly_once"`
	// InboxRetention is how long inbox records (handled message IDs) are
	// kept. Default 168h (7 days).
	InboxRetention time.Duration `koanf:"inbox_retention"`
}

// WithDefaults returns o with every zero field set to its default. The
// outbox's users apply it (Config.WithDefaults leaves the block as set, so
// services without an outbox print none of it).
func (o Outbox) WithDefaults() Outbox {
	o.PollInterval = cmp.Or(o.PollInterval, defaultOutboxPollInterval)
	o.BatchSize = cmp.Or(o.BatchSize, defaultOutboxBatchSize)
	o.Workers = cmp.Or(o.Workers, defaultOutboxWorkers)
	o.MaxBackoff = cmp.Or(o.MaxBackoff, defaultOutboxMaxBackoff)
	o.InboxRetention = cmp.Or(o.InboxRetention, defaultInboxRetention)
	return o
}

// outbox checks the outbox block, its zero fields read as their
// defaults. The DSN is only required where it is used (RequireDSN).
func (p *problems) outbox(o Outbox) {
	o = o.WithDefaults()
	p.positive("outbox.poll_interval", o.PollInterval)
	if o.BatchSize <= 0 || o.BatchSize > 10000 {
		p.add("outbox.batch_size", "must be between 1 and 10000, got %d", o.BatchSize)
	}
	if o.Workers <= 0 || o.Workers > 64 {
		p.add("outbox.workers", "must be between 1 and 64, got %d", o.Workers)
	}
	p.positive("outbox.max_backoff", o.MaxBackoff)
	p.positive("outbox.inbox_retention", o.InboxRetention)
	if o.Notify && o.SQLite() {
		p.add("outbox.notify", "PostgreSQL's LISTEN/NOTIFY: not available on the SQLite store (%s)", o.DSN)
	}
}

// SQLitePrefix starts the outbox.dsn of the embedded SQLite store:
// "sqlite:PATH" or "sqlite::memory:".
const SQLitePrefix = "sqlite:"

// SQLite reports whether the DSN names the embedded SQLite store.
func (o Outbox) SQLite() bool { return strings.HasPrefix(o.DSN, SQLitePrefix) }

// RequireDSN reports a missing outbox.dsn the way Validate reports its
// fields: the outbox module and commands need it.
func (o Outbox) RequireDSN() error {
	if o.DSN == "" {
		return invalid("", []FieldError{{Path: "outbox.dsn", Msg: "required: the outbox's database: a PostgreSQL connection string, or sqlite:PATH for the embedded store"}})
	}
	return nil
}

// dsnPassword finds the password (and sslpassword) of a key=value
// connection string; urlPassword the password of a URL, also one that
// url.Parse refuses.
var (
	dsnPassword = regexp.MustCompile(`((?:^|\s)(?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)
	urlPassword = regexp.MustCompile(`^([a-zA-Z][a-zA-Z0-9+.-]*://[^:/@?#]*:)(.*)@`)
)

// RedactedDSN is o.DSN with its passwords, if any, replaced.
func (o Outbox) RedactedDSN() string {
	if u, err := url.Parse(o.DSN); err == nil && u.Scheme != "" {
		// A placeholder url.URL does not escape, replaced after.
		const mark = "REDACTEDPASSWORD"
		if _, set := u.User.Password(); set {
			u.User = url.UserPassword(u.User.Username(), mark)
		}
		q := u.Query()
		for _, k := range []string{"password", "sslpassword"} {
			if q.Has(k) {
				q.Set(k, mark)
				u.RawQuery = q.Encode()
			}
		}
		return strings.ReplaceAll(u.String(), mark, redacted)
	}
	if strings.Contains(o.DSN, "://") {
		// Not a URL Go parses (a '#' or '/' in the password…): mask from
		// the user's ':' to the host's '@', and any password parameter.
		dsn := urlPassword.ReplaceAllString(o.DSN, "${1}"+redacted+"@")
		return regexp.MustCompile(`([?&](?:ssl)?password=)[^&]*`).ReplaceAllString(dsn, "${1}"+redacted)
	}
	return dsnPassword.ReplaceAllString(o.DSN, "${1}"+redacted)
}

// plainOutbox prints the fields of Outbox without its methods.
type plainOutbox Outbox

// String formats o with the password of its DSN redacted (so does a
// Config holding it).
func (o Outbox) String() string {
	o.DSN = o.RedactedDSN()
	return fmt.Sprintf("%+v", plainOutbox(o))
}

// GoString formats o with the password of its DSN redacted.
func (o Outbox) GoString() string {
	o.DSN = o.RedactedDSN()
	return fmt.Sprintf("%#v", plainOutbox(o))
}

// LogValue logs o with the password of its DSN redacted.
func (o Outbox) LogValue() slog.Value { return slog.StringValue(o.String()) }
