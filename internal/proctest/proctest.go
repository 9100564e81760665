// Package proctest runs eventfx's binaries as real processes in tests: it
// builds them once per test binary, starts them with captured output, waits
// for conditions with deadlines, and stops them with signals.
package proctest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildMu  sync.Mutex
	buildDir string
	built    = map[string]string{}
)

// Build compiles the main package pkg (e.g. "github.com/eventfx/eventfx/cmd/eventfx")
// once per test binary and returns the executable's path.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := built[pkg]; ok {
		return p
	}
	if buildDir == "" {
		d, err := os.MkdirTemp("", "eventfx-bin-")
		if err != nil {
			t.Fatalf("temp dir: %v", err)
		}
		buildDir = d
	}
	out := filepath.Join(buildDir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	built[pkg] = out
	return out
}

// BuildOutside compiles files (name → Go source of package main) as a
// user would: in a module of its own in a temporary directory outside the
// repository, requiring eventfx through a replace directive pointing at
// this checkout. It returns the executable's path. Only public packages
// can be imported from there, as from any user's module.
func BuildOutside(t testing.TB, files map[string]string) string {
	t.Helper()
	root, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || len(bytes.TrimSpace(root)) == 0 {
		t.Fatalf("find eventfx's go.mod: %v", err)
	}
	repo := filepath.Dir(string(bytes.TrimSpace(root)))
	dir := t.TempDir()
	gomod := "module example.com/usersservice\n\ngo 1.26\n\n" +
		"require github.com/eventfx/eventfx v0.0.0-00010101000000-000000000000\n\n" +
		"replace github.com/eventfx/eventfx => " + repo + "\n"
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatalf("write %s: %v", name, err)
		}
	}
	write("go.mod", gomod)
	sum, err := os.ReadFile(filepath.Join(repo, "go.sum"))
	if err != nil {
		t.Fatalf("read go.sum: %v", err)
	}
	write("go.sum", string(sum))
	for name, src := range files {
		write(name, src)
	}
	for _, args := range [][]string{{"mod", "tidy"}, {"build", "-o", "service", "."}} {
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s in a module outside the repository: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return filepath.Join(dir, "service")
}

// FreeAddr returns a loopback address with a port that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Proc is a running process whose output is captured.
type Proc struct {
	t    testing.TB
	name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
	err  error
}

// Start runs bin with args and extra environment (KEY=VALUE) and kills it at
// cleanup if the test did not stop it.
func Start(t testing.TB, bin string, env []string, args ...string) *Proc {
	t.Helper()
	p := &Proc{t: t, name: filepath.Base(bin) + " " + strings.Join(args, " "), done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	w := &lockedWriter{p: p}
	p.cmd.Stdout, p.cmd.Stderr = w, w
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", p.name, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("output of %s:\n%s", p.name, p.Output())
		}
	})
	return p
}

type lockedWriter struct{ p *Proc }

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.out.Write(b)
}

// Output is everything the process printed so far.
func (p *Proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// WaitOutput waits until the output matches re and returns the first match's
// submatches.
func (p *Proc) WaitOutput(re string, timeout time.Duration) []string {
	p.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(timeout)
	for {
		if m := rx.FindStringSubmatch(p.Output()); m != nil {
			return m
		}
		select {
		case <-p.done:
			if m := rx.FindStringSubmatch(p.Output()); m != nil {
				return m
			}
			p.t.Fatalf("%s exited (%v) before printing %q; output:\n%s", p.name, p.err, re, p.Output())
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s did not print %q within %s; output:\n%s", p.name, re, timeout, p.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// PID is the process's ID.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Signal sends sig to the process.
func (p *Proc) Signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %s: %v", p.name, err)
	}
}

// Wait waits for the process to exit and returns its exit code.
func (p *Proc) Wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.t.Fatalf("%s still running after %s; output:\n%s", p.name, timeout, p.Output())
	}
	return p.cmd.ProcessState.ExitCode()
}

// Stop sends SIGTERM and waits for a clean exit (code 0).
func (p *Proc) Stop(timeout time.Duration) {
	p.t.Helper()
	p.Signal(syscall.SIGTERM)
	if code := p.Wait(timeout); code != 0 {
		p.t.Fatalf("%s exited with %d after SIGTERM; output:\n%s", p.name, code, p.Output())
	}
}

// Run runs bin to completion with stdin and returns stdout+stderr and the
// exit code, failing the test after timeout.
func Run(t testing.TB, timeout time.Duration, stdin io.Reader, env []string, bin string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = stdin
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%s %s did not finish within %s; output:\n%s", filepath.Base(bin), strings.Join(args, " "), timeout, out)
	}
	if err != nil && cmd.ProcessState == nil {
		t.Fatalf("run %s: %v", bin, err)
	}
	return string(out), cmd.ProcessState.ExitCode()
}

// Broker starts `eventfx broker` (built from ./cmd/eventfx) on a free
// loopback port with dataDir ("" = in memory) and returns it with its
// address once it accepts connections.
func Broker(t testing.TB, dataDir string) (*Proc, string) {
	t.Helper()
	return BrokerAt(t, FreeAddr(t), dataDir)
}

// BrokerAt is Broker on a given address (to restart one on the same port).
func BrokerAt(t testing.TB, addr, dataDir string) (*Proc, string) {
	t.Helper()
	bin := Build(t, "github.com/eventfx/eventfx/cmd/eventfx")
	p := Start(t, bin, nil, "broker", "--addr", addr, "--data-dir", dataDir)
	p.WaitOutput(`broker listening on `+regexp.QuoteMeta(addr), 20*time.Second)
	return p, addr
}

// Lines returns the non-empty lines of s.
func Lines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// Env builds KEY=VALUE pairs.
func Env(kv ...string) []string {
	if len(kv)%2 != 0 {
		panic(fmt.Sprintf("proctest.Env: odd number of arguments: %v", kv))
	}
	var out []string
	for i := 0; i < len(kv); i += 2 {
		out = append(out, kv[i]+"="+kv[i+1])
	}
	return out
}

// WriteConfig writes a YAML config file for a service under test and
// returns its path.
func WriteConfig(t testing.TB, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatalf("write config: %v", err)
	}
	return path
}
