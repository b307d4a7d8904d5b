package imports

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// phrase introduces a rule in a doc comment.
const phrase = "must not import"

// moduleRoots are the first path elements that make an item relative to the
// module.
var moduleRoots = []string{"internal", "hack", "test", "cmd", "bench"}

// productRule is the rule every package under internal/ and cmd/ follows
// without saying so.
var productRule = rule{
	text:  "product packages never import `testing`, `hack/...` or `test/...` (test/imports doc)",
	items: []string{"testing", "hack/...", "test/..."},
}

// rule is one "must not import" sentence: its text and backquoted items.
type rule struct {
	text  string
	items []string
}

// pkg is the part of `go list -json` this test reads.
type pkg struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	CgoFiles   []string
	Imports    []string
	DepOnly    bool
	Module     *struct{ Path string }
	Error      *struct{ Err string }
	DepsErrors []*struct{ Err string }
}

func TestEveryPackageKeepsItsImportRule(t *testing.T) {
	mod, pkgs := goList(t)
	byPath := make(map[string]*pkg, len(pkgs))
	for _, p := range pkgs {
		byPath[p.ImportPath] = p
	}
	var own []*pkg
	for _, p := range pkgs {
		if !p.DepOnly && p.Module != nil && p.Module.Path == mod {
			own = append(own, p)
		}
	}
	if len(own) == 0 {
		t.Fatalf("go list found no package of module %s", mod)
	}

	var checked, without, absent []string
	for _, p := range own {
		rel := relative(mod, p.ImportPath)
		if p.Error != nil {
			t.Errorf("%s: go list: %s", rel, p.Error.Err)
		}
		for _, e := range p.DepsErrors {
			t.Errorf("%s: go list (a dependency): %s", rel, e.Err)
		}
		rules, err := packageRules(p)
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			continue
		}
		if len(rules) == 0 {
			without = append(without, rel)
		} else {
			checked = append(checked, rel)
		}
		if isProduct(rel) {
			rules = append(rules, productRule)
		}
		for _, r := range rules {
			for _, item := range r.items {
				m, err := newMatcher(mod, p.ImportPath, item)
				if err != nil {
					t.Errorf("%s: rule %q: %v", rel, r.text, err)
					continue
				}
				for _, chain := range violations(byPath, p.ImportPath, m) {
					for i := range chain {
						chain[i] = relative(mod, chain[i])
					}
					t.Errorf("%s imports %s (%s); its rule forbids `%s`: %s",
						rel, chain[len(chain)-1], strings.Join(chain, " → "), item, r.text)
				}
				if m.inModule && m.self == "" && !matchesAny(own, m) && !slices.Contains(absent, item) {
					absent = append(absent, item)
				}
			}
		}
	}
	t.Logf("packages held to a rule in their doc comment: %s", strings.Join(checked, ", "))
	t.Logf("packages whose doc comment states no import rule: %s", strings.Join(without, ", "))
	if len(absent) > 0 {
		// Not a failure: a rule may forbid a package before it exists, but a
		// misspelt path shows up here.
		t.Logf("forbidden in some rule but no package of the module (yet): %s", strings.Join(absent, ", "))
	}
}

// goList lists every package of the module and all their dependencies.
func goList(t *testing.T) (module string, pkgs []*pkg) {
	t.Helper()
	out, err := run(t, "", "go", "list", "-m", "-json")
	if err != nil {
		t.Fatal(err)
	}
	var m struct{ Path, Dir string }
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("go list -m -json: %v", err)
	}
	// -e: a package that does not build is reported by name below instead of
	// hiding every other package's result.
	out, err = run(t, m.Dir, "go", "list", "-e", "-deps",
		"-json=ImportPath,Dir,GoFiles,CgoFiles,Imports,DepOnly,Module,Error,DepsErrors", "./...")
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		p := new(pkg)
		if err := dec.Decode(p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return m.Path, pkgs
}

func run(t *testing.T, dir string, name string, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.Bytes())
	}
	return out, nil
}

// packageRules reads the rules from the package doc comments of p's
// non-test files.
func packageRules(p *pkg) ([]rule, error) {
	var rules []rule
	fset := token.NewFileSet()
	for _, name := range append(slices.Clone(p.GoFiles), p.CgoFiles...) {
		f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			return nil, fmt.Errorf("read doc comment: %w", err)
		}
		if f.Doc == nil {
			continue
		}
		rs, err := parseRules(f.Doc.Text())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		rules = append(rules, rs...)
	}
	return rules, nil
}

// parseRules finds the rules in the text of a doc comment (as
// ast.CommentGroup.Text returns it).
func parseRules(doc string) ([]rule, error) {
	var rules []rule
	for _, para := range paragraphs(doc) {
		rest := para
		for {
			i := strings.Index(rest, phrase)
			if i < 0 {
				break
			}
			start := sentenceStart(rest, i)
			r, n, err := parseRule(rest[i+len(phrase):])
			if err != nil {
				return nil, fmt.Errorf("rule %q: %w", strings.TrimSpace(rest[start:]), err)
			}
			r.text = strings.TrimSpace(rest[start : i+len(phrase)+n])
			if len(r.items) == 0 {
				return nil, fmt.Errorf("rule %q names no import in backquotes, so nothing checks it", r.text)
			}
			rules = append(rules, r)
			rest = rest[i+len(phrase)+n:]
		}
	}
	return rules, nil
}

// paragraphs returns the paragraphs of a doc comment, each joined into one
// line; indented lines (lists, code blocks) are left out.
func paragraphs(doc string) []string {
	var paras []string
	var cur []string
	flush := func() {
		if len(cur) > 0 {
			paras = append(paras, strings.Join(cur, " "))
			cur = nil
		}
	}
	for line := range strings.SplitSeq(doc, "\n") {
		switch {
		case strings.TrimSpace(line) == "":
			flush()
		case line[0] == ' ' || line[0] == '\t':
			flush()
		default:
			cur = append(cur, strings.TrimSpace(line))
		}
	}
	flush()
	return paras
}

// sentenceStart returns where the sentence holding s[i] starts, for
// messages.
func sentenceStart(s string, i int) int {
	if j := strings.LastIndex(s[:i], ". "); j >= 0 {
		return j + 2
	}
	return 0
}

// parseRule reads the backquoted items of s up to the end of its first
// sentence, and returns them and how many bytes of s the sentence took.
func parseRule(s string) (rule, int, error) {
	var r rule
	inQuote := false
	var item strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '`' && !inQuote:
			inQuote = true
			item.Reset()
		case c == '`':
			inQuote = false
			r.items = append(r.items, item.String())
		case inQuote:
			item.WriteByte(c)
		case c == '.' && (i+1 == len(s) || s[i+1] == ' '):
			return r, i + 1, nil
		}
	}
	if inQuote {
		return rule{}, 0, errors.New("a backquote is not closed")
	}
	return r, len(s), nil
}

// matcher says whether an import path is one a rule item forbids.
type matcher struct {
	path      string // the full import path of the item, without "/..."
	recursive bool   // the item ends in "/..."
	inModule  bool   // the item names packages of this module
	self      string // for `pgsync/...`: the package the rule belongs to
}

func newMatcher(module, self, item string) (matcher, error) {
	if item == "pgsync/..." {
		return matcher{path: module, recursive: true, inModule: true, self: self}, nil
	}
	if item == "" || strings.ContainsAny(item, " \t") {
		return matcher{}, fmt.Errorf("`%s` is not an import path", item)
	}
	path, recursive := strings.CutSuffix(item, "/...")
	if path == "" || strings.HasPrefix(path, "/") || strings.HasSuffix(path, "/") || strings.Contains(path, "...") {
		return matcher{}, fmt.Errorf("`%s` is not an import path (only a trailing /... is a pattern)", item)
	}
	if path == "pgsync" || strings.HasPrefix(path, "pgsync/") {
		return matcher{}, fmt.Errorf("`%s`: the only item starting with pgsync is `pgsync/...`; name a package relative to the module (internal/...)", item)
	}
	m := matcher{path: path, recursive: recursive}
	first, _, _ := strings.Cut(path, "/")
	if slices.Contains(moduleRoots, first) {
		m.path = module + "/" + path
		m.inModule = true
	}
	return m, nil
}

func (m matcher) match(importPath string) bool {
	if importPath == m.self {
		return false
	}
	return importPath == m.path || m.recursive && strings.HasPrefix(importPath, m.path+"/")
}

func matchesAny(pkgs []*pkg, m matcher) bool {
	return slices.ContainsFunc(pkgs, func(p *pkg) bool { return m.match(p.ImportPath) })
}

// violations returns, for every package that m matches and that from
// imports directly or through packages m does not match, one shortest
// import chain from `from` to it.
func violations(byPath map[string]*pkg, from string, m matcher) [][]string {
	parent := map[string]string{from: ""}
	queue := []string{from}
	var found [][]string
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		p := byPath[cur]
		if p == nil {
			continue
		}
		for _, imp := range p.Imports {
			if _, seen := parent[imp]; seen {
				continue
			}
			parent[imp] = cur
			if m.match(imp) {
				found = append(found, chain(parent, imp))
				continue
			}
			queue = append(queue, imp)
		}
	}
	return found
}

func chain(parent map[string]string, to string) []string {
	var c []string
	for p := to; p != ""; p = parent[p] {
		c = append(c, p)
	}
	slices.Reverse(c)
	return c
}

func relative(module, importPath string) string {
	if rel, ok := strings.CutPrefix(importPath, module+"/"); ok {
		return rel
	}
	return importPath
}

func isProduct(rel string) bool {
	return strings.HasPrefix(rel, "internal/") || strings.HasPrefix(rel, "cmd/")
}

// The parser is what decides whether a rule is checked at all, so it is
// tested on its own: a rule it misread would pass silently.
func TestParseRules(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  string
		want [][]string // items per rule
		err  string
	}{
		{
			name: "one sentence with patterns whose dots do not end it",
			doc:  "Package x does y.\n\nIt must not import `internal/plan`, `k8s.io/client-go/...`\nor `github.com/jackc/pgx/...`. It reads files.\n",
			want: [][]string{{"internal/plan", "k8s.io/client-go/...", "github.com/jackc/pgx/..."}},
		},
		{
			name: "mid-sentence after a colon, prose after the list",
			doc:  "It is a leaf: it must not import `pgsync/...`; callers read plan.Revision only. Then `os/exec` is not in the rule.\n",
			want: [][]string{{"pgsync/..."}},
		},
		{
			name: "two rules in two paragraphs, end of paragraph ends a sentence",
			doc:  "It must not import `os/exec`\n\nIt must not import `testing`.\n",
			want: [][]string{{"os/exec"}, {"testing"}},
		},
		{
			name: "indented lines are not read",
			doc:  "Example:\n\n\tIt must not import `x`.\n  - it must not import `y`.\n",
			want: nil,
		},
		{
			name: "no rule",
			doc:  "Package x imports what it likes.\n",
			want: nil,
		},
		{
			name: "a rule in prose only",
			doc:  "It must not import any other pgsync package.\n",
			err:  "names no import in backquotes",
		},
		{
			name: "an unclosed backquote",
			doc:  "It must not import `internal/plan.\n",
			err:  "not closed",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rules, err := parseRules(tc.doc)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got [][]string
			for _, r := range rules {
				got = append(got, r.items)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("items = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestMatcher(t *testing.T) {
	const mod = "github.com/pgsync/pgsync"
	for _, tc := range []struct {
		item, self, path string
		want             bool
	}{
		{"internal/plan", "", mod + "/internal/plan", true},
		{"internal/plan", "", mod + "/internal/plan/sub", false},
		{"internal/plan", "", mod + "/internal/planner", false},
		{"internal/instance/...", "", mod + "/internal/instance", true},
		{"internal/instance/...", "", mod + "/internal/instance/lease", true},
		{"internal/instance/...", "", mod + "/internal/instancex", false},
		{"k8s.io/client-go/...", "", "k8s.io/client-go/kubernetes", true},
		{"k8s.io/client-go/...", "", "k8s.io/api/core/v1", false},
		{"os/exec", "", "os/exec", true},
		{"os/exec", "", "os", false},
		{"testing", "", "testing/fstest", false},
		{"pgsync/...", mod + "/internal/pgconf", mod + "/internal/pgconf/pgsettings", true},
		{"pgsync/...", mod + "/internal/pgconf", mod + "/internal/pgconf", false},
		{"pgsync/...", mod + "/internal/pgconf", "github.com/pgsync/pgsyncx", false},
	} {
		m, err := newMatcher(mod, tc.self, tc.item)
		if err != nil {
			t.Fatalf("%s: %v", tc.item, err)
		}
		if got := m.match(tc.path); got != tc.want {
			t.Errorf("`%s` (rule of %q) matches %s = %v, want %v", tc.item, tc.self, tc.path, got, tc.want)
		}
	}
	for _, bad := range []string{"", "pgsync/internal/plan", "internal/.../x", "internal/", "a b"} {
		if _, err := newMatcher(mod, "", bad); err == nil {
			t.Errorf("newMatcher(%q) accepted it", bad)
		}
	}
}
