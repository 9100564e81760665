package outbox

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/eventfx/eventfx/config"
)

// Open returns a connection pool on cfg.DSN (required) with room for the
// relay's workers and listener beside the service's own transactions. It
// does not connect: Ping does.
func Open(cfg config.Outbox) (*pgxpool.Pool, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.RequireDSN(); err != nil {
		return nil, err
	}
	pc, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("outbox.dsn: %s", flatten(err))
	}
	pc.MaxConns = max(pc.MaxConns, int32(cfg.Workers+4))
	pool, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		return nil, fmt.Errorf("outbox.dsn: %s", flatten(err))
	}
	return pool, nil
}

// Ping checks that the database of pool answers, with an error of one line
// that names it (its password redacted).
func Ping(ctx context.Context, pool *pgxpool.Pool, cfg config.Outbox) error {
	if err := pool.Ping(ctx); err != nil {
		return fmt.Errorf("outbox: connect to %s: %s", cfg.RedactedDSN(), flatten(err))
	}
	return nil
}

// flatten is err's text on one line: pgx lists each address it tried on a
// line of its own.
func flatten(err error) string {
	var lines []string
	for l := range strings.SplitSeq(err.Error(), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "; ")
}
