package pgtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventfx/eventfx/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// Each test gets its own database: a table made in one is absent in the
// other.
func TestDSNIsAFreshDatabasePerTest(t *testing.T) {
	ctx := context.Background()
	first := pgtest.DSN(t)
	second := pgtest.DSN(t)
	require.NotEqual(t, first, second)

	a, err := pgx.Connect(ctx, first)
	require.NoError(t, err)
	defer a.Close(ctx)
	_, err = a.Exec(ctx, "CREATE TABLE only_here (n int)")
	require.NoError(t, err)

	b, err := pgx.Connect(ctx, second)
	require.NoError(t, err)
	defer b.Close(ctx)
	var n int
	require.NoError(t, b.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 'only_here'").Scan(&n))
	require.Zero(t, n, "a table created in one test's database is visible in another's")

	var version string
	require.NoError(t, b.QueryRow(ctx, "SHOW server_version").Scan(&version))
	t.Logf("PostgreSQL %s", version)
}

// The cluster's CPU time grows with the work its backends do.
func TestClusterCPUCountsTheBackends(t *testing.T) {
	c := pgtest.Shared(t)
	before, err := c.CPU()
	require.NoError(t, err)
	conn, err := pgx.Connect(context.Background(), pgtest.DSN(t))
	require.NoError(t, err)
	defer conn.Close(context.Background())
	_, err = conn.Exec(context.Background(), "SELECT count(*) FROM generate_series(1, 3000000)")
	require.NoError(t, err)
	after, err := c.CPU()
	require.NoError(t, err)
	assert.Greater(t, after-before, 100*time.Millisecond, "a query of about a second of CPU, seen from /proc")
}
