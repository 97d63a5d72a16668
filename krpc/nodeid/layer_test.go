package nodeid

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// This package exists so that the wire and the table share the node ID
// without importing each other; the test keeps it so. It reads the import
// lines of every non-test file, whatever its build tags, so a tagged file
// cannot slip an import past it. Direct imports suffice: with these rules
// no path of ours leads from krpc to routing or back.
func TestLayering(t *testing.T) {
	for dir, allowed := range map[string][]string{
		".":             nil,
		"..":            {"node/krpc/nodeid"},
		"../../routing": {"node/krpc/nodeid"},
	} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: no Go files (%v)", dir, err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			af, err := parser.ParseFile(token.NewFileSet(), f, src, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, is := range af.Imports {
				p, _ := strconv.Unquote(is.Path.Value)
				if (p == "node" || strings.HasPrefix(p, "node/")) && !slices.Contains(allowed, p) {
					t.Errorf("%s imports %s; of ours it may import only %v", f, p, allowed)
				}
			}
		}
	}
}
