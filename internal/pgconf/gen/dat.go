package main

// Transcription of PostgreSQL 19's GUC definitions, which moved from the C
// tables of guc_tables.c to src/backend/utils/misc/guc_parameters.dat: a
// Perl array of hashes (one per parameter, keys name, type, context,
// flags, min, max, options, ifdef, …, every value a single-quoted string)
// that gen_guc_tables.pl turns into C at build time. The file is read here
// as data, not run.

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// datRecord is one parameter's hash from guc_parameters.dat.
type datRecord struct {
	Line   int
	Fields map[string]string
}

// parseDat reads the Perl data syntax guc_parameters.dat uses: '#' (and
// a few C) comments, one [ … ] array of { key => 'value', … } hashes, trailing
// commas allowed, values in single quotes (\\ and \' are the only escapes
// in a Perl single-quoted string). Anything else is an error naming the
// line, so a change of format is noticed rather than half-read.
func parseDat(src string) ([]datRecord, error) {
	p := &datParser{s: src, line: 1}
	p.skip()
	if !p.eat('[') {
		return nil, p.errf("want [ opening the array")
	}
	var out []datRecord
	for {
		p.skip()
		if p.eat(']') {
			break
		}
		if !p.eat('{') {
			return nil, p.errf("want { opening a record, or ]")
		}
		rec := datRecord{Line: p.line, Fields: map[string]string{}}
		for {
			p.skip()
			if p.eat('}') {
				break
			}
			key := p.word()
			if key == "" {
				return nil, p.errf("want a key or }")
			}
			p.skip()
			if !strings.HasPrefix(p.s[p.i:], "=>") {
				return nil, p.errf("%s: want =>", key)
			}
			p.i += 2
			p.skip()
			val, err := p.quoted()
			if err != nil {
				return nil, p.errf("%s: %v", key, err)
			}
			if _, dup := rec.Fields[key]; dup {
				return nil, p.errf("%s given twice", key)
			}
			rec.Fields[key] = val
			p.skip()
			if !p.eat(',') && !strings.HasPrefix(p.s[p.i:], "}") {
				return nil, p.errf("%s: want , or }", key)
			}
		}
		out = append(out, rec)
		p.skip()
		if !p.eat(',') && !strings.HasPrefix(p.s[p.i:], "]") {
			return nil, p.errf("want , or ] after a record")
		}
	}
	p.skip()
	if p.i != len(p.s) {
		return nil, p.errf("text after the closing ]")
	}
	return out, nil
}

type datParser struct {
	s    string
	i    int
	line int
}

func (p *datParser) errf(format string, args ...any) error {
	return fmt.Errorf("line %d: %s", p.line, fmt.Sprintf(format, args...))
}

// skip passes white space and comments.
func (p *datParser) skip() {
	for p.i < len(p.s) {
		switch c := p.s[p.i]; {
		case c == '\n':
			p.line++
			p.i++
		case c == ' ' || c == '\t' || c == '\r':
			p.i++
		case c == '#':
			for p.i < len(p.s) && p.s[p.i] != '\n' {
				p.i++
			}
		case strings.HasPrefix(p.s[p.i:], "/*"):
			// The file has a few C comments between records
			// ("/* see max_wal_senders */"); skipped as comments too.
			end := strings.Index(p.s[p.i+2:], "*/")
			if end < 0 {
				p.i = len(p.s)
				return
			}
			p.line += strings.Count(p.s[p.i:p.i+2+end], "\n")
			p.i += end + 4
		default:
			return
		}
	}
}

func (p *datParser) eat(c byte) bool {
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *datParser) word() string {
	j := p.i
	for j < len(p.s) && isWord(p.s[j]) {
		j++
	}
	w := p.s[p.i:j]
	p.i = j
	return w
}

func (p *datParser) quoted() (string, error) {
	if !p.eat('\'') {
		return "", errors.New("want a single-quoted value")
	}
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '\'':
			p.i++
			return b.String(), nil
		case c == '\\' && p.i+1 < len(p.s) && (p.s[p.i+1] == '\\' || p.s[p.i+1] == '\''):
			b.WriteByte(p.s[p.i+1])
			p.i += 2
		default:
			if c == '\n' {
				p.line++
			}
			b.WriteByte(c)
			p.i++
		}
	}
	return "", errors.New("unterminated quoted value")
}

// datTypes maps the .dat type names to pg_settings' vartype.
var datTypes = map[string]string{"bool": "bool", "int": "integer", "real": "real", "string": "string", "enum": "enum"}

// transcribeDat reads guc_parameters.dat: the same result as transcribe
// gives for the C tables. Entries with an ifdef macro a Linux build does
// not define, and GUC_NO_SHOW_ALL entries, are left out; enum option
// arrays and bound macros come from the tree (the arrays are still C, in
// guc_tables.c and elsewhere).
func transcribeDat(datFile, tree string) ([]guc, error) {
	raw, err := os.ReadFile(datFile)
	if err != nil {
		return nil, err
	}
	recs, err := parseDat(string(raw))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", datFile, err)
	}
	macros, err := objectMacros(tree, "")
	if err != nil {
		return nil, err
	}
	enums := map[string][]enumVal{}
	out, err := datGUCs(recs, macros, func(name string) ([]enumVal, error) {
		if v, ok := enums[name]; ok {
			return v, nil
		}
		if tree == "" {
			return nil, fmt.Errorf("options array %s: no -tree to look in", name)
		}
		v, _, err := findEnum(tree, name)
		if err != nil {
			return nil, err
		}
		if v == nil {
			return nil, fmt.Errorf("options array %s not found under %s", name, tree)
		}
		enums[name] = v
		return v, nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", datFile, err)
	}
	return out, nil
}

// datGUCs turns parsed records into parameters; options looks up an enum
// options array by name.
func datGUCs(recs []datRecord, macros map[string][][]string, options func(string) ([]enumVal, error)) ([]guc, error) {
	var out []guc
	for _, r := range recs {
		f := r.Fields
		name := f["name"]
		if name == "" {
			return nil, fmt.Errorf("record at line %d has no name", r.Line)
		}
		if m := f["ifdef"]; m != "" && !linuxBuild[m] {
			continue
		}
		g := guc{Name: name, VarType: datTypes[f["type"]]}
		if g.VarType == "" {
			return nil, fmt.Errorf("%s: unknown type %q", name, f["type"])
		}
		ctx, ok := contexts[f["context"]]
		if !ok {
			return nil, fmt.Errorf("%s: unknown context %q", name, f["context"])
		}
		g.Context = ctx
		hidden := false
		for _, fl := range strings.Split(f["flags"], "|") {
			fl = strings.TrimSpace(fl)
			if fl == "GUC_NO_SHOW_ALL" {
				hidden = true
			}
			if u, ok := units[fl]; ok {
				g.Unit = u
			}
		}
		if hidden {
			continue
		}
		switch g.VarType {
		case "integer", "real":
			if f["min"] == "" || f["max"] == "" {
				return nil, fmt.Errorf("%s: no bounds", name)
			}
			lo, err := evalNum(tokens(f["min"]), macros)
			if err != nil {
				return nil, fmt.Errorf("%s: min %q: %w", name, f["min"], err)
			}
			hi, err := evalNum(tokens(f["max"]), macros)
			if err != nil {
				return nil, fmt.Errorf("%s: max %q: %w", name, f["max"], err)
			}
			integer := g.VarType == "integer"
			g.Min, g.Max = formatBound(lo, integer), formatBound(hi, integer)
		case "enum":
			opt := tokens(f["options"])
			if len(opt) != 1 && len(opt) != 3 {
				return nil, fmt.Errorf("%s: options %q", name, f["options"])
			}
			vals, err := options(opt[0])
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			if len(opt) == 3 {
				skip, err := strconv.Atoi(opt[2])
				if opt[1] != "+" || err != nil || skip > len(vals) {
					return nil, fmt.Errorf("%s: options %q", name, f["options"])
				}
				vals = vals[skip:]
			}
			for _, v := range vals {
				if !v.Hidden {
					g.Enum = append(g.Enum, v.Name)
				}
			}
		}
		out = append(out, g)
	}
	sortGUCs(out)
	for i := 1; i < len(out); i++ {
		if strings.EqualFold(out[i].Name, out[i-1].Name) {
			return nil, fmt.Errorf("%s defined twice", out[i].Name)
		}
	}
	return out, nil
}
