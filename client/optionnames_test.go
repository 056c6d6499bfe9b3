package client

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// Option names follow the rule doc.go states: an exported function that
// returns an option type starts with that type's prefix (With for Option,
// Consume for ConsumeOption, Producer for ProducerOption), so a name says
// which call it configures.
func TestOptionNamesFollowOneRule(t *testing.T) {
	prefix := map[string]string{"Option": "With", "ConsumeOption": "Consume", "ProducerOption": "Producer", "GroupOption": "Group"}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	seen := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Recv != nil || !fn.Name.IsExported() || fn.Type.Results == nil || len(fn.Type.Results.List) != 1 {
				continue
			}
			id, ok := fn.Type.Results.List[0].Type.(*ast.Ident)
			if !ok {
				continue
			}
			want, ok := prefix[id.Name]
			if !ok {
				continue
			}
			seen++
			if !strings.HasPrefix(fn.Name.Name, want) {
				t.Errorf("%s: %s returns %s but does not start with %q", fset.Position(fn.Pos()), fn.Name.Name, id.Name, want)
			}
		}
	}
	if seen < 20 {
		t.Errorf("found %d option constructors, want the 20+ in options.go", seen)
	}
}
