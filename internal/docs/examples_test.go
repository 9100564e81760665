package docs_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestExamplesBuildOutside compiles every example, tests included, as a
// user who copied its directory would: in a module of its own outside the
// repository, example.com/try, requiring eventfx through a replace
// directive pointing at this checkout. From there only eventfx's public
// packages (app, config, handlers, router, eventfxtest) can be imported:
// an example that uses an internal package fails here with the go
// command's "use of internal package … not allowed".
//
// The module's go.mod has the go directive and the requirements of
// eventfx's own, and its go.sum is eventfx's, so nothing is resolved anew:
// the modules come from the module cache (or the Go module proxy, as for
// any build), and the go command only adds what is missing (-mod=mod).
func TestExamplesBuildOutside(t *testing.T) {
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	gomod := outsideGoMod(t, repo)
	gosum, err := os.ReadFile(filepath.Join(repo, "go.sum"))
	if err != nil {
		t.Fatalf("read go.sum: %v", err)
	}
	examples := mainPackages(t, filepath.Join(repo, "examples"))
	if len(examples) == 0 {
		t.Fatal("no example with a main package under examples/")
	}
	for _, name := range examples {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			copyDir(t, filepath.Join(repo, "examples", name), dir)
			write(t, filepath.Join(dir, "go.mod"), []byte(gomod))
			write(t, filepath.Join(dir, "go.sum"), gosum)
			// vet compiles the tests too: they may use the public API only
			// as well.
			for _, args := range [][]string{{"build", "./..."}, {"vet", "./..."}} {
				cmd := exec.Command("go", args...)
				cmd.Dir = dir
				cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("go %s in a copy of examples/%s outside the repository (examples may import only eventfx's public packages): %v\n%s",
						strings.Join(args, " "), name, err, out)
				}
			}
		})
	}
}

// outsideGoMod is the go.mod of a user's module, example.com/try, with
// eventfx's go directive and requirements, requiring eventfx itself from
// the checkout at repo.
func outsideGoMod(t *testing.T, repo string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repo, "go.mod"))
	if err != nil {
		t.Fatalf("read go.mod: %v", err)
	}
	const module = "module github.com/eventfx/eventfx\n"
	own := string(b)
	if !strings.HasPrefix(own, module) {
		t.Fatalf("go.mod does not start with %q", module)
	}
	for _, line := range strings.Split(own, "\n") {
		// A user's module does not inherit eventfx's replace or exclude
		// directives: copying them would build something no user gets.
		if f := strings.Fields(line); len(f) > 0 && (f[0] == "replace" || f[0] == "exclude") {
			t.Fatalf("go.mod has a %s directive, which a user's module would not have: adapt this test", f[0])
		}
	}
	return "module example.com/try\n" + strings.TrimPrefix(own, module) +
		"\nrequire github.com/eventfx/eventfx v0.0.0-00010101000000-000000000000\n" +
		"\nreplace github.com/eventfx/eventfx => " + strconv.Quote(repo) + "\n"
}

// mainPackages lists the directories right under dir whose Go files (tests
// aside) are of package main.
func mainPackages(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		files, err := filepath.Glob(filepath.Join(dir, e.Name(), "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			ast, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.PackageClauseOnly)
			if err != nil {
				t.Fatal(err)
			}
			if ast.Name.Name == "main" {
				names = append(names, e.Name())
				break
			}
		}
	}
	return names
}

// copyDir copies the files under src, tests included, to dst.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, 0o644)
	})
	if err != nil {
		t.Fatalf("copy %s: %v", src, err)
	}
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
}
