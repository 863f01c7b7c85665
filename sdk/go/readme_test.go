package zotartifacts_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

var (
	readmeExample = regexp.MustCompile("(?s)<!-- example: (\\w+) -->\n```go\n(.*?)\n```")
	readmeProgram = regexp.MustCompile("(?s)<!-- program: (\\w+) -->\n```go\n(.*?)\n```")
)

// exampleBodies are the bodies of example_test.go's Example functions, one tab less indented,
// without their Output comment.
func exampleBodies(t *testing.T) map[string]string {
	src, err := os.ReadFile("example_test.go")
	must(t, err)
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, "example_test.go", src, parser.ParseComments)
	must(t, err)
	bodies := map[string]string{}
	for _, d := range file.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || !strings.HasPrefix(fn.Name.Name, "Example") {
			continue
		}
		text := string(src[fset.Position(fn.Body.Lbrace).Offset+1 : fset.Position(fn.Body.Rbrace).Offset])
		var lines []string
		for _, line := range strings.Split(strings.Trim(text, "\n"), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "// Output:") {
				break
			}
			lines = append(lines, strings.TrimPrefix(line, "\t"))
		}
		bodies[fn.Name.Name] = strings.TrimRight(strings.Join(lines, "\n"), "\n")
	}
	return bodies
}

// TestReadmeExamplesAreTheExamples: every README block marked as an example is the body of
// that Example function, and every Example function is in the README.
func TestReadmeExamplesAreTheExamples(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	must(t, err)
	bodies := exampleBodies(t)
	shown := map[string]bool{}
	for _, m := range readmeExample.FindAllStringSubmatch(string(readme), -1) {
		name, block := m[1], m[2]
		shown[name] = true
		body, ok := bodies[name]
		if !ok {
			t.Errorf("README shows %s, which example_test.go lacks", name)
		} else if body != block {
			t.Errorf("README's %s differs from example_test.go's:\n--- README\n%s\n--- example_test.go\n%s", name, block, body)
		}
	}
	for name := range bodies {
		if !shown[name] {
			t.Errorf("%s is not in README.md", name)
		}
	}
	if len(shown) < 15 {
		t.Fatalf("only %d examples in README.md", len(shown))
	}
}

// TestReadmeQuickStartRuns builds the README's quick start as a program of its own (a module
// that requires this one, replaced by this directory) and runs it against the live store.
func TestReadmeQuickStartRuns(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	must(t, err)
	m := readmeProgram.FindStringSubmatch(string(readme))
	if m == nil {
		t.Fatal("README.md has no quick start program")
	}
	here, err := filepath.Abs(".")
	must(t, err)
	dir := t.TempDir()
	module := "github.com/zot-artifact-store/zot-artifact-store/sdk/go"
	gomod := "module quickstart\n\ngo 1.19\n\nrequire " + module + " v0.0.0\n\nreplace " + module + " => " + here + "\n"
	must(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte(m[2]+"\n"), 0o644))
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	run := exec.Command(goTool, "run", ".")
	run.Dir = dir
	run.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off")
	out, err := run.CombinedOutput()
	if err != nil {
		t.Fatalf("the quick start failed: %v\n%s", err, out)
	}
	want := "hello\nverified: true sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03\n"
	if string(out) != want {
		t.Fatalf("the quick start printed %q", out)
	}
}
