package cluster

import (
	"bufio"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// compatRow is one row of docs/compat.md: a CloudNativePG field and what
// pgsync does with it.
type compatRow struct {
	field, status, notes string
	line                 int
}

const (
	compatSupported  = "supported"
	compatDifference = "supported with a difference"
	compatRefused    = "refused"
	compatDoc        = "../../docs/compat.md"
)

// readCompat parses the table rows of docs/compat.md: | `FIELD` | STATUS | NOTES |.
func readCompat(t *testing.T) map[string]compatRow {
	t.Helper()
	f, err := os.Open(compatDoc)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows := map[string]compatRow{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if !strings.HasPrefix(line, "| `") || strings.HasPrefix(line, "| `kind: ") {
			continue // not a row, or a row of another kind (TestUnsupportedKinds)
		}
		cells := strings.Split(strings.Trim(line, "|"), " | ")
		if len(cells) != 3 {
			t.Errorf("docs/compat.md:%d: a row has three cells (| `FIELD` | STATUS | NOTES |), got %d: %s", n, len(cells), line)
			continue
		}
		r := compatRow{field: strings.Trim(strings.TrimSpace(cells[0]), "`"), status: strings.TrimSpace(cells[1]), notes: strings.TrimSpace(cells[2]), line: n}
		switch r.status {
		case compatSupported, compatDifference, compatRefused:
		default:
			t.Errorf("docs/compat.md:%d: %s: status %q is none of %q, %q, %q", n, r.field, r.status, compatSupported, compatDifference, compatRefused)
		}
		if r.status == compatDifference && r.notes == "" {
			t.Errorf("docs/compat.md:%d: %s: supported with a difference: say which in the notes", n, r.field)
		}
		if prev, dup := rows[r.field]; dup {
			t.Errorf("docs/compat.md:%d: %s has a row already at line %d", n, r.field, prev.line)
		}
		rows[r.field] = r
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

// decodablePaths lists every field path the decoder reads into the
// Cluster type, list elements written as []; it does not descend into maps
// (parameters, labels: their keys are the user's).
func decodablePaths() map[string]reflect.Type {
	paths := map[string]reflect.Type{}
	var walk func(t reflect.Type, path string)
	walk = func(t reflect.Type, path string) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if path != "" {
			paths[path] = t
		}
		switch {
		case t == quantityType:
		case t.Kind() == reflect.Struct:
			for name, idx := range jsonFields(t) {
				walk(t.FieldByIndex(idx).Type, join(path, name))
			}
		case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
			walk(t.Elem(), path+"[]")
		}
	}
	walk(reflect.TypeOf(Cluster{}), "")
	for p, t := range paths {
		if strings.HasSuffix(p, "[]") {
			delete(paths, p) // the list's row covers its elements
			_ = t
		}
	}
	return paths
}

// sampleValue is a value of type t for YAML: what a file would write.
func sampleValue(t reflect.Type) any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == quantityType:
		return "1Gi"
	case t.Kind() == reflect.Struct:
		return map[string]any{}
	case t.Kind() == reflect.Slice:
		return []any{sampleValue(t.Elem())}
	case t.Kind() == reflect.Map:
		return map[string]any{"x": sampleValue(t.Elem())}
	case t.Kind() == reflect.String:
		return "x"
	case t.Kind() == reflect.Int:
		return 1
	case t.Kind() == reflect.Bool:
		return true
	}
	panic("no sample for " + t.String())
}

// compatDocument is a valid Cluster with value written at path (list
// elements [] as one-element lists), and the path as diagnostics name it.
func compatDocument(t *testing.T, path string, value any) ([]byte, string) {
	t.Helper()
	doc := map[string]any{
		"apiVersion": "postgresql.cnpg.io/v1",
		"kind":       "Cluster",
		"metadata":   map[string]any{"name": "compat"},
		"spec":       map[string]any{"instances": 1, "imageName": "ghcr.io/cloudnative-pg/postgresql:16.4", "storage": map[string]any{"size": "1Gi"}},
	}
	parts := strings.Split(path, ".")
	m := doc
	for i, part := range parts {
		name, list := strings.CutSuffix(part, "[]")
		if i == len(parts)-1 {
			m[name] = value
			break
		}
		next, ok := m[name].(map[string]any)
		if !ok {
			next = map[string]any{}
			if list {
				m[name] = []any{next}
			} else {
				m[name] = next
			}
		}
		m = next
	}
	data, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return data, strings.ReplaceAll(path, "[]", "[0]")
}

// TestCompat keeps docs/compat.md honest: every decodable field has a row
// that says it is supported, every refused row is refused with its
// message, and every entry of unsupported.go is a refused row.
func TestCompat(t *testing.T) {
	rows := readCompat(t)
	decodable := decodablePaths()
	const howTo = "(a field of the Cluster type, internal/cluster/types.go, that a file may write)"

	for _, p := range sortedKeys(decodable) {
		r, ok := rows[p]
		if !ok {
			r, ok = coveringRow(rows, p)
		}
		switch {
		case !ok:
			t.Errorf("%s is decodable %s but docs/compat.md has no row for it: add | `%s` | supported | … | (or supported with a difference, saying which)", p, howTo, p)
		case r.status == compatRefused:
			if _, listed := unsupported[p]; listed {
				t.Errorf("%s is decodable now, but docs/compat.md:%d says refused and internal/cluster/unsupported.go still lists it: change the row to supported (or supported with a difference: say which) and delete the entry %q from unsupported.go", p, r.line, p)
				continue
			}
			// Refused by validation: the value a file would write is refused with the row's message.
			checkRefused(t, r, sampleValue(decodable[p]))
		}
	}
	for _, p := range sortedKeys(unsupported) {
		if _, ok := decodable[p]; ok {
			if r, ok := rows[p]; !ok || r.status == compatRefused {
				continue // reported above
			}
			t.Errorf("internal/cluster/unsupported.go lists %s, which is decodable now: delete the entry %q (the decoder never looks there for it)", p, p)
			continue
		}
		r, ok := rows[p]
		switch {
		case !ok:
			t.Errorf("internal/cluster/unsupported.go refuses %s but docs/compat.md has no row for it: add | `%s` | refused | %s |", p, p, unsupported[p])
		case r.status != compatRefused:
			t.Errorf("docs/compat.md:%d says %s is %s, but the decoder refuses it (internal/cluster/unsupported.go): make it decodable, or change the row to refused", r.line, p, r.status)
		case r.notes != unsupported[p]:
			t.Errorf("docs/compat.md:%d: %s: the notes of a refused row are its message, %q; got %q", r.line, p, unsupported[p], r.notes)
		case refusedParent(p) != "":
			// Refused whole with its parent until the parent is supported.
		default:
			checkRefused(t, r, map[string]any{})
		}
	}
	for _, p := range sortedKeys(rows) {
		r := rows[p]
		if sub, ok := strings.CutSuffix(p, ".*"); ok {
			if r.status == compatRefused {
				t.Errorf("docs/compat.md:%d: %s: a row FIELD.* covers supported sub-fields; give a refused field a row of its own", r.line, p)
			}
			if _, dec := decodable[strings.TrimSuffix(sub, "[]")]; !dec {
				t.Errorf("docs/compat.md:%d says the sub-fields of %s are %s, but the decoder has no field %s", r.line, sub, r.status, sub)
			}
			continue
		}
		_, dec := decodable[p]
		_, listed := unsupported[p]
		switch {
		case r.status != compatRefused && !dec:
			t.Errorf("docs/compat.md:%d says %s is %s, but the decoder has no such field %s: add it to the type, or change the row to refused and add %q to internal/cluster/unsupported.go", r.line, p, r.status, howTo, p)
		case r.status == compatRefused && !dec && !listed:
			t.Errorf("docs/compat.md:%d says %s is refused, but the decoder reports it as an unknown field: add the entry %q: %q to internal/cluster/unsupported.go", r.line, p, p, r.notes)
		}
	}
}

// refusedParent returns the nearest parent of path that unsupported.go
// refuses, or "".
func refusedParent(path string) string {
	for {
		cut := strings.LastIndexAny(path, ".")
		if cut < 0 {
			return ""
		}
		path = path[:cut]
		if _, ok := unsupported[schemaPath(path)]; ok {
			return path
		}
	}
}

// coveringRow returns the row FIELD.* of the nearest parent of path that
// has one.
func coveringRow(rows map[string]compatRow, path string) (compatRow, bool) {
	for {
		cut := strings.LastIndexAny(path, ".")
		if cut < 0 {
			return compatRow{}, false
		}
		path = path[:cut]
		if r, ok := rows[path+".*"]; ok {
			return r, true
		}
	}
}

// checkRefused loads a valid Cluster that writes value at the row's field
// and wants a diagnostic at that field with the row's message.
func checkRefused(t *testing.T, r compatRow, value any) {
	t.Helper()
	data, field := compatDocument(t, r.field, value)
	_, err := Load([]File{{Path: "compat.yaml", Data: data}})
	errs, _ := err.(Errors)
	var got []string
	for _, d := range errs {
		if d.Field == field && d.Message == r.notes {
			return
		}
		got = append(got, d.String())
	}
	t.Errorf("docs/compat.md:%d says %s is refused with %q, but a file writing it gets:\n%s\nfile:\n%s", r.line, r.field, r.notes, strings.Join(got, "\n"), data)
}

// TestUnsupportedMessages: every refusal says so in the same words, so
// that a user (or grep) tells it from a typo.
func TestUnsupportedMessages(t *testing.T) {
	for _, p := range sortedKeys(unsupported) {
		if !strings.Contains(unsupported[p], "not supported by pgsync") {
			t.Errorf("%s: %q does not say \"not supported by pgsync\"", p, unsupported[p])
		}
	}
}

// TestPrintCompatPaths lists the decodable paths (go test -run
// TestPrintCompatPaths -v), to write docs/compat.md's rows from.
func TestPrintCompatPaths(t *testing.T) {
	if os.Getenv("PGSYNC_PRINT_COMPAT") == "" {
		t.Skip("set PGSYNC_PRINT_COMPAT=1 to list the decodable fields")
	}
	paths := sortedKeys(decodablePaths())
	sort.Strings(paths)
	for _, p := range paths {
		fmt.Println(p)
	}
}

// TestUnsupportedKinds: a document of another CloudNativePG kind is
// refused at its kind, with a row in docs/compat.md; the same kind of
// another group is skipped.
func TestUnsupportedKinds(t *testing.T) {
	doc, err := os.ReadFile(compatDoc)
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range sortedKeys(unsupportedKinds) {
		msg := unsupportedKinds[kind]
		if !strings.Contains(msg, "not supported by pgsync") {
			t.Errorf("%s: %q does not say \"not supported by pgsync\"", kind, msg)
		}
		if row := fmt.Sprintf("| `kind: %s` | refused | %s |", kind, msg); !strings.Contains(string(doc), row) {
			t.Errorf("docs/compat.md has no row %s", row)
		}
		data := fmt.Sprintf("apiVersion: postgresql.cnpg.io/v1\nkind: %s\nmetadata: {name: x}\nspec: {}\n", kind)
		set, err := Load([]File{{Path: "k.yaml", Data: []byte(data)}})
		want := fmt.Sprintf("k.yaml:2:7: kind: %s", msg)
		if err == nil || err.Error() != want || len(set.Skipped) != 0 {
			t.Errorf("%s: Load = %v (skipped %v), want %s", kind, err, set.Skipped, want)
		}
		other := strings.Replace(data, "postgresql.cnpg.io", "example.com", 1)
		if set, err := Load([]File{{Path: "k.yaml", Data: []byte(other)}}); err != nil || len(set.Skipped) != 1 {
			t.Errorf("%s of another group: Load = %v (skipped %v), want it skipped", kind, err, set.Skipped)
		}
	}
}
