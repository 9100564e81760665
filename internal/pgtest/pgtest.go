// Package pgtest runs a throwaway PostgreSQL cluster for eventfx's tests,
// from the binaries of the machine's PostgreSQL (`pg_config --bindir`):
// one cluster per test binary, started on first use, listening on a unix
// socket only, and a fresh database per test (CREATE DATABASE … TEMPLATE).
//
// Running as root, initdb and postgres run as the "postgres" user, with
// their data and socket directories under the system temp dir owned by
// that user (a test's t.TempDir() is root-only). The cluster trades
// durability for speed (fsync off): a test that kills PostgreSQL itself
// must not rely on it surviving a crash of the machine, which no test does.
//
// A test binary whose tests use it calls Main from TestMain, which stops
// the cluster and removes its directories when the tests end:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Cluster is a running PostgreSQL cluster.
type Cluster struct {
	bindir string
	cred   *syscall.Credential
	dir    string // owns data/ and the socket
	socket string
	cmd    *exec.Cmd
	exited chan struct{}
	n      atomic.Int64
}

var (
	once    sync.Once
	shared  *Cluster
	failure error
	// absent is the reason tests skip: no PostgreSQL binaries.
	absent string
)

// Main runs the tests of m and then stops the cluster, if one was started,
// and exits with the tests' code.
func Main(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.Stop()
	}
	os.Exit(code)
}

// DSN returns the connection string of a fresh, empty database for t, on
// the test binary's cluster (started on first use). It skips t when
// PostgreSQL is not installed and fails it when the cluster cannot start.
// The database is dropped when t ends.
func DSN(t testing.TB) string {
	t.Helper()
	c := Shared(t)
	name := fmt.Sprintf("t%d_%d", os.Getpid(), c.n.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.exec(ctx, "postgres", "CREATE DATABASE "+name+" TEMPLATE template0"); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = c.exec(ctx, "postgres", "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	return c.DSN(name)
}

// Shared returns the test binary's cluster, starting it on first use. It
// skips t when PostgreSQL is not installed.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	once.Do(func() {
		bindir, err := binDir()
		if err != nil {
			absent = err.Error()
			return
		}
		shared, failure = Start(bindir)
	})
	if absent != "" {
		t.Skipf("pgtest: PostgreSQL is not installed (%s); install Debian's postgresql package to run this test", absent)
	}
	if failure != nil {
		t.Fatalf("pgtest: %v", failure)
	}
	return shared
}

// binDir is where initdb and postgres are.
func binDir() (string, error) {
	out, err := exec.Command("pg_config", "--bindir").Output()
	if err != nil {
		return "", fmt.Errorf("pg_config --bindir: %v", err)
	}
	dir := strings.TrimSpace(string(out))
	for _, b := range []string{"initdb", "postgres"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return "", fmt.Errorf("%s not in %s", b, dir)
		}
	}
	return dir, nil
}

// Start initialises a cluster in a new directory under the system temp dir
// and starts it, listening on a unix socket in that directory only. Stop
// stops it and removes the directory.
func Start(bindir string) (*Cluster, error) {
	cred, err := credential()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "eventfx-pg-")
	if err != nil {
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	c := &Cluster{bindir: bindir, cred: cred, dir: dir, socket: dir}
	initdb := exec.Command(filepath.Join(bindir, "initdb"), "-D", c.data(), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync", "--locale=C")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	if err := c.run(); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) data() string { return filepath.Join(c.dir, "data") }

// run starts postgres on the cluster's directory and waits until it
// accepts connections.
func (c *Cluster) run() error {
	c.exited = make(chan struct{})
	c.cmd = exec.Command(filepath.Join(c.bindir, "postgres"), "-D", c.data(),
		"-k", c.socket, "-p", "5432",
		"-c", "listen_addresses=",
		"-c", "fsync=off", "-c", "full_page_writes=off",
		"-c", "max_connections=200", "-c", "shared_buffers=128MB",
		"-c", "log_min_messages=warning")
	// Pdeathsig: a test binary that dies takes the cluster with it.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred, Pdeathsig: syscall.SIGKILL}
	logf, err := os.OpenFile(filepath.Join(c.dir, "postgres.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		close(c.exited)
		return err
	}
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	if err := c.cmd.Start(); err != nil {
		logf.Close()
		close(c.exited)
		return fmt.Errorf("start postgres: %w", err)
	}
	exited := c.exited
	go func() { _ = c.cmd.Wait(); logf.Close(); close(exited) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.exec(ctx, "postgres", "SELECT 1")
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(c.dir, "postgres.log"))
			return fmt.Errorf("postgres exited at start:\n%s", log)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres not accepting connections after 30s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// credential is the postgres user's when running as root (initdb refuses
// root), else nil: the current user.
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, and no postgres user to run PostgreSQL as: %w", err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err := errors.Join(err1, err2); err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// DSN is the connection string of database name.
func (c *Cluster) DSN(name string) string {
	return fmt.Sprintf("host=%s port=5432 user=postgres dbname=%s sslmode=disable", c.socket, name)
}

// exec runs sql in database db.
func (c *Cluster) exec(ctx context.Context, db, sql string) error {
	conn, err := pgx.Connect(ctx, c.DSN(db))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// Halt shuts PostgreSQL down (fast shutdown: sessions are disconnected)
// and keeps its data: Resume starts it again.
func (c *Cluster) Halt() {
	if c.cmd == nil || c.cmd.Process == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-c.exited:
	case <-time.After(15 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
}

// Resume starts a halted cluster again, on the same socket.
func (c *Cluster) Resume() error { return c.run() }

// Stop shuts the cluster down and removes its directory.
func (c *Cluster) Stop() {
	c.Halt()
	os.RemoveAll(c.dir)
}

// Private starts a cluster of t's own, stopped when t ends (for tests
// that stop PostgreSQL), and returns it with the DSN of its "postgres"
// database. It skips t when PostgreSQL is not installed.
func Private(t testing.TB) (*Cluster, string) {
	t.Helper()
	bindir, err := binDir()
	if err != nil {
		t.Skipf("pgtest: PostgreSQL is not installed (%s); install Debian's postgresql package to run this test", err)
	}
	c, err := Start(bindir)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(c.Stop)
	return c, c.DSN("postgres")
}

// CPU is the CPU time the cluster's processes have used so far: the
// postmaster's, its exited children's, and its living children's (the
// backends of open connections). It reads /proc, so it works on Linux
// only; the benchmarks report it per message beside their own process's.
func (c *Cluster) CPU() (time.Duration, error) {
	if c.cmd == nil || c.cmd.Process == nil {
		return 0, errors.New("pgtest: the cluster is not running")
	}
	pm := c.cmd.Process.Pid
	own, err := procTicks(pm, true)
	if err != nil {
		return 0, err
	}
	ticks := own.ticks
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == pm {
			continue
		}
		st, err := procTicks(pid, false)
		if err == nil && st.ppid == pm { // a process that ended meanwhile is in the postmaster's
			ticks += st.ticks
		}
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// clockTicks is Linux's USER_HZ, the unit of /proc/PID/stat's times.
const clockTicks = 100

type procStat struct {
	ppid  int
	ticks int64
}

// procTicks reads pid's parent and user+system time from /proc/PID/stat,
// with its waited-for children's when children is set.
func procTicks(pid int, children bool) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	// The command name, in parentheses, may hold spaces: the fields
	// start after its closing one, at field 3 (state).
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	num := func(field int) int64 { v, _ := strconv.ParseInt(f[field-3], 10, 64); return v }
	st := procStat{ppid: int(num(4)), ticks: num(14) + num(15)}
	if children {
		st.ticks += num(16) + num(17)
	}
	return st, nil
}
