//go:build ignore

// sizes lists the Go files over 700 lines and the functions over 120 lines
// (tests aside) under the given directories, generated files aside: the size
// targets of CONTRIBUTING.md. It exits 1 when it lists any.
//
//	go run .ci/sizes.go pkg collector
package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

const (
	maxFileLines = 700
	maxFuncLines = 120
)

func main() {
	dirs := os.Args[1:]
	if len(dirs) == 0 {
		dirs = []string{"pkg", "collector"}
	}
	var out []string
	fset := token.NewFileSet()
	for _, root := range dirs {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if d.Name() == "node_modules" || d.Name() == "testdata" {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.HasSuffix(path, ".go") {
				return nil
			}
			f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
			if err != nil {
				return err
			}
			if ast.IsGenerated(f) {
				return nil
			}
			if n := fset.Position(f.End()).Line; n > maxFileLines {
				out = append(out, fmt.Sprintf("file %5d %s", n, path))
			}
			if strings.HasSuffix(path, "_test.go") {
				return nil
			}
			for _, decl := range f.Decls {
				fn, ok := decl.(*ast.FuncDecl)
				if !ok || fn.Body == nil {
					continue
				}
				n := fset.Position(fn.End()).Line - fset.Position(fn.Pos()).Line + 1
				if n > maxFuncLines {
					name := fn.Name.Name
					if fn.Recv != nil && len(fn.Recv.List) > 0 {
						name = recv(fn.Recv.List[0].Type) + "." + name
					}
					out = append(out, fmt.Sprintf("func %5d %s:%d %s", n, path, fset.Position(fn.Pos()).Line, name))
				}
			}
			return nil
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "sizes:", err)
			os.Exit(2)
		}
	}
	sort.Strings(out)
	for _, l := range out {
		fmt.Println(l)
	}
	if len(out) > 0 {
		fmt.Fprintf(os.Stderr, "sizes: %d over the targets (files %d lines, functions %d lines)\n", len(out), maxFileLines, maxFuncLines)
		os.Exit(1)
	}
}

func recv(e ast.Expr) string {
	switch t := e.(type) {
	case *ast.StarExpr:
		return recv(t.X)
	case *ast.IndexExpr:
		return recv(t.X)
	case *ast.IndexListExpr:
		return recv(t.X)
	case *ast.Ident:
		return t.Name
	}
	return "?"
}
