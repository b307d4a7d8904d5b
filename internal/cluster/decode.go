package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/hbollon/go-edlib"
	"io"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
	"k8s.io/apimachinery/pkg/api/resource"
)

// API groups whose Cluster kind pgsync reads. A Cluster of any other group
// (Cluster API, say) is another product's object and is skipped.
var apiGroups = map[string]bool{
	"postgresql.k8s.enterprisedb.io": true,
	"postgresql.cnpg.io":             true,
}

// Skipped records a document that is not a pgsync Cluster.
type Skipped struct {
	Pos    Position
	Reason string
}

// decodeFile decodes every document of one file. Documents that are not a
// Cluster of a known group are returned as skipped; problems are returned
// as diagnostics, and a document with problems yields no Cluster.
// undecoded are the Clusters of documents with problems, as far as they
// decoded (Set.Invalid).
// Image catalogs come back as catalogs, or badCatalogs when they have
// problems (catalog.go).
func decodeFile(f File) (clusters, undecoded []*Cluster, skipped []Skipped, warnings, problems []Diagnostic, catalogs, badCatalogs []*ImageCatalog) {
	data, nbspLine := normalizeIndentation(f.Data)
	if nbspLine > 0 {
		warnings = append(warnings, Diagnostic{Pos: Position{File: f.Path, Line: nbspLine, Column: 1},
			Message: "indentation contains non-breaking spaces (U+00A0, common in YAML copied from web pages); they were read as spaces"})
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return clusters, undecoded, skipped, warnings, problems, catalogs, badCatalogs
		}
		if err != nil {
			// A syntax error ends the stream: the parser cannot resync.
			return clusters, undecoded, skipped, warnings, append(problems, syntaxDiagnostic(f.Path, err)), catalogs, badCatalogs
		}
		if len(doc.Content) == 0 || isNull(doc.Content[0]) {
			continue // an empty document ("---" alone, or only comments)
		}
		if root := doc.Content[0]; root.Kind == yaml.MappingNode && isCatalogKind(scalarField(root, "kind")) {
			if group, _, _ := strings.Cut(scalarField(root, "apiVersion"), "/"); apiGroups[group] {
				cat, probs := decodeCatalog(f.Path, root)
				if len(probs) > 0 {
					problems = append(problems, probs...)
					badCatalogs = append(badCatalogs, cat)
				} else {
					catalogs = append(catalogs, cat)
				}
				continue
			}
		}
		c, skip, probs := decodeDocument(f.Path, doc.Content[0])
		switch {
		case len(probs) > 0:
			problems = append(problems, probs...)
			if c != nil {
				undecoded = append(undecoded, c)
			}
		case skip != nil:
			skipped = append(skipped, *skip)
		default:
			clusters = append(clusters, c)
		}
	}
}

// normalizeIndentation replaces non-breaking spaces in the leading
// whitespace of each line with plain spaces. YAML forbids them there, yet
// they are what a browser copies from the code blocks of web pages. Each
// two-byte U+00A0 becomes one space, so columns (counted in characters) do
// not move. It returns the first line changed, or 0.
func normalizeIndentation(data []byte) ([]byte, int) {
	const nbsp = "\u00a0"
	if !bytes.Contains(data, []byte(nbsp)) {
		return data, 0
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	first := 0
	for i, line := range lines {
		indent := 0
		for indent < len(line) {
			switch {
			case line[indent] == ' ' || line[indent] == '\t':
				indent++
				continue
			case bytes.HasPrefix(line[indent:], []byte(nbsp)):
				indent += len(nbsp)
				continue
			}
			break
		}
		if !bytes.Contains(line[:indent], []byte(nbsp)) {
			continue
		}
		if first == 0 {
			first = i + 1
		}
		lines[i] = append(bytes.ReplaceAll(line[:indent:indent], []byte(nbsp), []byte(" ")), line[indent:]...)
	}
	return bytes.Join(lines, nil), first
}

var yamlLine = regexp.MustCompile(`line (\d+)(?::(\d+))?`)

// syntaxDiagnostic turns a yaml.v3 parse error ("yaml: line 4: mapping
// values are not allowed in this context") into a positioned diagnostic.
func syntaxDiagnostic(file string, err error) Diagnostic {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	pos := Position{File: file, Line: 1, Column: 1}
	if m := yamlLine.FindStringSubmatchIndex(msg); m != nil {
		pos.Line, _ = strconv.Atoi(msg[m[2]:m[3]])
		if m[4] >= 0 {
			pos.Column, _ = strconv.Atoi(msg[m[4]:m[5]])
		}
		msg = strings.TrimLeft(msg[m[1]:], ": ")
	}
	return Diagnostic{Pos: pos, Message: "invalid YAML: " + msg}
}

func decodeDocument(file string, root *yaml.Node) (*Cluster, *Skipped, []Diagnostic) {
	start := Position{File: file, Line: root.Line, Column: root.Column}
	if root.Kind != yaml.MappingNode {
		return nil, nil, []Diagnostic{{Pos: start, Message: fmt.Sprintf("a document must be a mapping with apiVersion and kind, got %s", describe(root))}}
	}
	kind, apiVersion := scalarField(root, "kind"), scalarField(root, "apiVersion")
	if group, _, _ := strings.Cut(apiVersion, "/"); apiGroups[group] && unsupportedKinds[kind] != "" {
		return nil, nil, []Diagnostic{{Pos: Position{File: file, Line: valueOf(root, "kind").Line, Column: valueOf(root, "kind").Column}, Field: "kind", Message: unsupportedKinds[kind]}}
	}
	if kind != "Cluster" {
		return nil, &Skipped{Pos: start, Reason: fmt.Sprintf("kind %q is not Cluster", kind)}, nil
	}
	group, version, _ := strings.Cut(apiVersion, "/")
	if !apiGroups[group] {
		return nil, &Skipped{Pos: start, Reason: fmt.Sprintf("apiVersion %q is not a PostgreSQL Cluster group", apiVersion)}, nil
	}
	d := &decoder{file: file, positions: map[string]Position{}, cluster: true}
	if version != "v1" {
		d.errorf(valueOf(root, "apiVersion"), "apiVersion", "unsupported version %q of %s (allowed: v1)", version, group)
	}
	c := &Cluster{Source: start}
	d.decode(root, reflect.ValueOf(c).Elem(), "")
	c.Positions = d.positions
	if len(d.problems) > 0 {
		c.DecodeProblems = d.problems
		return c, nil, d.problems // what decoded, for Set.Invalid
	}
	return c, nil, nil
}

// decoder walks a YAML node tree into Go values by their json tags,
// rejecting unknown fields and wrong types with their positions. yaml.v3's
// own decoding reports lines but not columns or field paths, and stops at
// the first unknown field; this walk reports them all.
type decoder struct {
	file      string
	positions map[string]Position
	problems  []Diagnostic
	// cluster: the document is a Cluster, whose fields pgsync lacks are
	// refused by name (unsupported.go) and whose typos get a suggestion.
	cluster bool
}

func (d *decoder) pos(n *yaml.Node) Position {
	return Position{File: d.file, Line: n.Line, Column: n.Column}
}

func (d *decoder) errorf(n *yaml.Node, field, format string, args ...any) {
	d.problems = append(d.problems, Diagnostic{Pos: d.pos(n), Field: field, Message: fmt.Sprintf(format, args...)})
}

var quantityType = reflect.TypeOf(Quantity(""))

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if path != "" {
		d.positions[path] = d.pos(n)
	}
	if isNull(n) {
		return // null leaves the zero value: the field is unset
	}
	switch {
	case v.Type() == quantityType:
		d.decodeQuantity(n, v, path)
		return
	case v.Kind() == reflect.Pointer:
		elem := reflect.New(v.Type().Elem())
		d.decode(n, elem.Elem(), path)
		v.Set(elem)
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Map:
		d.decodeMap(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errorf(n, path, "expected a list, got %s", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.String:
		if !isScalar(n, "!!str") {
			d.errorf(n, path, "expected a string, got %s (quote it to make it a string)", describe(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Int:
		if !isScalar(n, "!!int") {
			d.errorf(n, path, "expected an integer, got %s", describe(n))
			return
		}
		i, err := strconv.ParseInt(n.Value, 0, 32)
		if err != nil {
			d.errorf(n, path, "integer %s out of range", n.Value)
			return
		}
		v.SetInt(i)
	case reflect.Bool:
		if !isScalar(n, "!!bool") {
			d.errorf(n, path, "expected true or false, got %s", describe(n))
			return
		}
		var b bool
		if err := n.Decode(&b); err != nil {
			d.errorf(n, path, "expected true or false, got %q", n.Value)
			return
		}
		v.SetBool(b)
	default:
		panic(fmt.Sprintf("cluster: no decoder for %s at %s", v.Type(), path))
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping, got %s", describe(n))
		return
	}
	fields := jsonFields(v.Type())
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		name := key.Value
		fieldPath := join(path, name)
		if seen[name] {
			d.errorf(key, fieldPath, "field set twice")
			continue
		}
		seen[name] = true
		idx, ok := fields[name]
		if !ok {
			if d.cluster {
				d.notDecodable(key, val, path, name, sortedKeys(fields))
			} else {
				d.errorf(key, fieldPath, "unknown field %q (allowed: %s)", name, strings.Join(sortedKeys(fields), ", "))
			}
			continue
		}
		d.decode(val, v.FieldByIndex(idx), fieldPath)
	}
}

// notDecodable reports a field that no type of pgsync has: refused by
// name when it is a CloudNativePG field pgsync does not support
// (unsupported.go), each of its refused sub-fields in turn when only those
// are listed (spec.bootstrap), and otherwise unknown, with the nearest
// name when one is close enough to be a typo.
func (d *decoder) notDecodable(key, val *yaml.Node, path, name string, known []string) {
	fieldPath := join(path, name)
	if msg, ok := unsupportedAt(fieldPath); ok {
		d.errorf(key, fieldPath, "%s", msg)
		return
	}
	if children := unsupportedChildren(fieldPath); len(children) > 0 && val.Kind == yaml.MappingNode {
		d.positions[fieldPath] = d.pos(val)
		for i := 0; i+1 < len(val.Content); i += 2 {
			d.notDecodable(val.Content[i], val.Content[i+1], fieldPath, val.Content[i].Value, nil)
		}
		return
	}
	near, ok := synonyms[schemaPath(fieldPath)]
	if !ok {
		near = nearest(name, append(append([]string(nil), known...), unsupportedChildren(path)...))
	}
	switch {
	case near != "" && slices.Contains(known, near):
		d.errorf(key, fieldPath, "unknown field %q (did you mean %s?)", name, near)
	case near != "":
		d.errorf(key, fieldPath, "unknown field %q (did you mean %s? CloudNativePG has it, pgsync does not support it)", name, near)
	case len(known) > 0:
		d.errorf(key, fieldPath, "unknown field %q (allowed: %s)", name, strings.Join(known, ", "))
	default:
		d.errorf(key, fieldPath, "unknown field %q", name)
	}
}

// nearest returns the candidate closest to name by edit distance (letter
// case aside), if it is close enough to be a typo of it: one edit in a
// short name, two up to eight letters, three beyond.
func nearest(name string, candidates []string) string {
	limit := 1
	switch {
	case len(name) > 8:
		limit = 3
	case len(name) > 4:
		limit = 2
	}
	best, bestDist := "", limit+1
	for _, c := range candidates {
		if c == name {
			continue
		}
		if dist := edlib.OSADamerauLevenshteinDistance(strings.ToLower(name), strings.ToLower(c)); dist < bestDist || dist == bestDist && c < best {
			best, bestDist = c, dist
		}
	}
	return best
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping, got %s", describe(n))
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		fieldPath := join(path, key.Value)
		if key.Kind != yaml.ScalarNode {
			d.errorf(key, path, "keys must be strings, got %s", describe(key))
			continue
		}
		k := reflect.ValueOf(key.Value)
		if m.MapIndex(k).IsValid() {
			d.errorf(key, fieldPath, "key set twice")
			continue
		}
		elem := reflect.New(v.Type().Elem()).Elem()
		d.decode(val, elem, fieldPath)
		m.SetMapIndex(k, elem)
	}
	v.Set(m)
}

func (d *decoder) decodeQuantity(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode || !(n.Tag == "!!str" || n.Tag == "!!int" || n.Tag == "!!float") {
		d.errorf(n, path, "expected a quantity such as 10Gi or 500m, got %s", describe(n))
		return
	}
	if _, err := resource.ParseQuantity(n.Value); err != nil {
		d.errorf(n, path, "invalid quantity %q (examples: 10Gi, 512Mi, 500m, 2)", n.Value)
		return
	}
	v.SetString(n.Value)
}

// jsonFields maps json field names to struct field index paths; fields
// tagged "-" are not decoded, and an embedded struct tagged ",inline"
// (CloudNativePG's probes) contributes its fields.
func jsonFields(t reflect.Type) map[string][]int {
	fields := map[string][]int{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous && name == "" && opts == "inline" && f.Type.Kind() == reflect.Struct {
			for n, idx := range jsonFields(f.Type) {
				fields[n] = append([]int{i}, idx...)
			}
			continue
		}
		if name == "" || name == "-" {
			continue
		}
		fields[name] = []int{i}
	}
	return fields
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func isScalar(n *yaml.Node, tag string) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == tag
}

// describe names a node's YAML type for error messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!str":
			return fmt.Sprintf("the string %q", n.Value)
		case "!!int", "!!float":
			return "the number " + n.Value
		case "!!bool":
			return "the boolean " + n.Value
		case "!!null":
			return "null"
		}
		return fmt.Sprintf("%s %q", n.Tag, n.Value)
	}
	return "an unsupported YAML node"
}

func scalarField(m *yaml.Node, key string) string {
	if v := valueOf(m, key); v != nil && v.Kind == yaml.ScalarNode {
		return v.Value
	}
	return ""
}

func valueOf(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
