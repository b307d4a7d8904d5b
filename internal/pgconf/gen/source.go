package main

// Transcription of PostgreSQL's GUC tables from release sources: the
// ConfigureNamesBool/Int/Real/String/Enum arrays of
// src/backend/utils/misc/guc_tables.c (guc.c before PostgreSQL 16), with
// the enum option arrays they name (some live in other files of the tree).
// The preprocessor conditionals are resolved for a Linux server build
// (linuxBuild); entries flagged GUC_NO_SHOW_ALL are left out, since
// pg_settings never lists them.

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/pgsync/pgsync/internal/pgconf"
)

// linuxBuild are the macros defined in a Linux build of the server as the
// PostgreSQL Debian/PGDG images are built (OpenSSL, LZ4, zstd, no
// assertions, no debugging macros). Everything else is undefined.
var linuxBuild = map[string]bool{
	"HAVE_SYSLOG": true, "HAVE_SYNCFS": true, "HAVE_POSIX_FALLOCATE": true,
	"HAVE_COPY_FILE_RANGE": true, "HAVE_UNIX_SOCKETS": true, "HAVE_POLL_H": true,
	"POLLRDHUP": true, "MAP_HUGE_MASK": true, "MAP_HUGE_SHIFT": true,
	"USE_SSL": true, "USE_OPENSSL": true, "USE_LZ4": true, "USE_ZSTD": true,
	"USE_PREFETCH": true,
	// wal_sync_method's options: glibc's O_SYNC and O_DSYNC, fdatasync(2);
	// xlogdefs.h's OPEN_SYNC_FLAG/OPEN_DATASYNC_FLAG (13, 14) follow from them.
	"HAVE_FDATASYNC": true, "O_SYNC": true, "O_DSYNC": true,
	"OPEN_SYNC_FLAG": true, "OPEN_DATASYNC_FLAG": true,
	// io_method = io_uring (18) exists only in builds with liburing. Taken
	// as defined, so the value is accepted; a server built without it
	// refuses the value at start (docs/parameters.md says so).
	"IOMETHOD_IO_URING_ENABLED": true,
	// dsm_impl.h, for every platform but Windows.
	"USE_DSM_POSIX": true, "USE_DSM_SYSV": true, "USE_DSM_MMAP": true,
	// pg_config_manual.h defines TRACE_SORT (13-16; the macro is gone in 17)
	// and PG_KRB_SRVTAB.
	"TRACE_SORT": true, "PG_KRB_SRVTAB": true,
}

// guc is one transcribed parameter.
type guc struct {
	Name    string
	Context string
	VarType string
	Unit    string
	Min     string
	Max     string
	Enum    []string
}

var contexts = map[string]string{
	"PGC_INTERNAL": "internal", "PGC_POSTMASTER": "postmaster", "PGC_SIGHUP": "sighup",
	"PGC_SU_BACKEND": "superuser-backend", "PGC_BACKEND": "backend",
	"PGC_SUSET": "superuser", "PGC_USERSET": "user",
}

var units = map[string]string{
	"GUC_UNIT_KB": "kB", "GUC_UNIT_BLOCKS": "8kB", "GUC_UNIT_XBLOCKS": "8kB",
	"GUC_UNIT_MB": "MB", "GUC_UNIT_BYTE": "B",
	"GUC_UNIT_MS": "ms", "GUC_UNIT_S": "s", "GUC_UNIT_MIN": "min",
}

// constants are the macros the bounds of the GUC tables use, with their
// values on a 64-bit Linux build with the default BLCKSZ and XLOG_BLCKSZ
// of 8192. An identifier not listed is an error, so a new macro is never
// guessed.
var constants = map[string]float64{
	"INT_MAX": math.MaxInt32, "INT_MIN": math.MinInt32, "DBL_MAX": math.MaxFloat64,
	"BLCKSZ": 8192, "XLOG_BLCKSZ": 8192,
	// MAX_KILOBYTES is INT_MAX when sizeof(size_t) > 4 (guc.h).
	"MAX_KILOBYTES": math.MaxInt32,
	// MAX_BACKENDS: 0x3FFFF (postmaster.h 13-17; 2^MAX_BACKENDS_BITS - 1 =
	// 2^18 - 1 in procnumber.h 18).
	"MAX_BACKENDS": 0x3FFFF,
	// glibc's IOV_MAX (limits.h), which PG_IOV_MAX bounds (17: Min(IOV_MAX,
	// 32); 18: Min(IOV_MAX, 128)).
	"IOV_MAX": 1024,
	// pg_config.h (configure's default 1 GB segments of 8 kB blocks).
	"RELSEG_SIZE": 131072,
	"SIZE_MAX":    math.MaxUint64,
}

// transcribe reads the GUC tables of gucFile; enum option arrays declared
// extern there are looked up in the .c files under tree.
func transcribe(gucFile, tree string) ([]guc, error) {
	raw, err := os.ReadFile(gucFile)
	if err != nil {
		return nil, err
	}
	src, err := preprocess(string(raw))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", gucFile, err)
	}
	enums := enumArrays(src)
	// Every name ending in _options or _info the GUC file mentions may be
	// an options array defined elsewhere (declared extern here or in guc.h).
	for _, ext := range regexp.MustCompile(`\b(\w+_(?:options|info))\b`).FindAllStringSubmatch(src, -1) {
		if _, ok := enums[ext[1]]; ok || tree == "" {
			continue
		}
		vals, _, err := findEnum(tree, ext[1])
		if err != nil {
			return nil, err
		}
		if vals == nil {
			continue // not an options array, or not one in this tree
		}
		enums[ext[1]] = vals
	}
	macros, err := objectMacros(tree, src)
	if err != nil {
		return nil, err
	}
	var out []guc
	for _, kind := range []string{"Bool", "Int", "Real", "String", "Enum"} {
		gs, err := table(src, kind, enums, macros)
		if err != nil {
			return nil, fmt.Errorf("%s: ConfigureNames%s: %w", gucFile, kind, err)
		}
		out = append(out, gs...)
	}
	sortGUCs(out)
	for i := 1; i < len(out); i++ {
		if strings.EqualFold(out[i].Name, out[i-1].Name) {
			return nil, fmt.Errorf("%s defined twice", out[i].Name)
		}
	}
	return out, nil
}

// findEnum finds the definition of an enum option array in the tree's .c
// files; it is an error when two files define different arrays of that name.
func findEnum(tree, name string) ([]enumVal, string, error) {
	var found []enumVal
	var where string
	re := regexp.MustCompile(`const struct config_enum_entry ` + name + `\[\]\s*=`)
	err := filepath.WalkDir(tree, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".c") {
			return err
		}
		raw, err := os.ReadFile(p)
		if err != nil || !re.Match(raw) {
			return err
		}
		src, err := preprocess(string(raw))
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		vals, ok := enumArrays(src)[name]
		if !ok {
			return nil
		}
		if found != nil && fmt.Sprint(found) != fmt.Sprint(vals) {
			return fmt.Errorf("enum options %s defined differently in %s and %s", name, where, p)
		}
		found, where = vals, p
		return nil
	})
	return found, where, err
}

// preprocess keeps the lines a Linux build compiles (#if/#ifdef/#ifndef/
// #elif/#else/#endif evaluated against linuxBuild) and drops every
// directive line, joining continued lines first.
func preprocess(src string) (string, error) {
	src = strings.ReplaceAll(src, "\\\n", " ")
	type frame struct{ parentOn, on, taken bool }
	var stack []frame
	on := true
	var b strings.Builder
	for n, line := range strings.Split(src, "\n") {
		t := strings.TrimSpace(line)
		if !strings.HasPrefix(t, "#") {
			if on {
				b.WriteString(line)
			}
			b.WriteByte('\n')
			continue
		}
		d := strings.TrimSpace(strings.TrimPrefix(t, "#"))
		word, rest, _ := strings.Cut(d, " ")
		if i := strings.IndexAny(word, "\t("); i >= 0 {
			word, rest = word[:i], word[i:]+" "+rest
		}
		rest = stripComment(rest)
		switch word {
		case "if", "ifdef", "ifndef":
			var v bool
			var err error
			switch word {
			case "ifdef":
				v = linuxBuild[strings.TrimSpace(rest)]
			case "ifndef":
				v = !linuxBuild[strings.TrimSpace(rest)]
			default:
				v, err = evalIf(rest)
			}
			if err != nil {
				return "", fmt.Errorf("line %d: #%s %s: %w", n+1, word, rest, err)
			}
			stack = append(stack, frame{parentOn: on, on: on && v, taken: v})
			on = on && v
		case "elif":
			if len(stack) == 0 {
				return "", fmt.Errorf("line %d: #elif without #if", n+1)
			}
			f := &stack[len(stack)-1]
			v, err := evalIf(rest)
			if err != nil {
				return "", fmt.Errorf("line %d: #elif %s: %w", n+1, rest, err)
			}
			f.on = f.parentOn && !f.taken && v
			f.taken = f.taken || v
			on = f.on
		case "else":
			if len(stack) == 0 {
				return "", fmt.Errorf("line %d: #else without #if", n+1)
			}
			f := &stack[len(stack)-1]
			f.on = f.parentOn && !f.taken
			f.taken = true
			on = f.on
		case "endif":
			if len(stack) == 0 {
				return "", fmt.Errorf("line %d: #endif without #if", n+1)
			}
			on = stack[len(stack)-1].parentOn
			stack = stack[:len(stack)-1]
		}
		b.WriteByte('\n')
	}
	if len(stack) != 0 {
		return "", errors.New("unterminated #if")
	}
	return b.String(), nil
}

func stripComment(s string) string {
	if i := strings.Index(s, "/*"); i >= 0 {
		s = s[:i]
	}
	if i := strings.Index(s, "//"); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

// evalIf evaluates an #if expression made of defined(X), !, &&, || and
// parentheses. The block-size sanity checks (#if BLCKSZ < 1024 || …, which
// guard an #error) are false for the default sizes.
func evalIf(e string) (bool, error) {
	if strings.Contains(e, "BLCKSZ <") {
		return false, nil
	}
	p := &ifParser{s: strings.ReplaceAll(e, " ", "")}
	v, err := p.or()
	if err == nil && p.s != "" {
		err = fmt.Errorf("unexpected %q", p.s)
	}
	return v, err
}

type ifParser struct{ s string }

func (p *ifParser) or() (bool, error) {
	v, err := p.and()
	for err == nil && strings.HasPrefix(p.s, "||") {
		p.s = p.s[2:]
		var w bool
		w, err = p.and()
		v = v || w
	}
	return v, err
}

func (p *ifParser) and() (bool, error) {
	v, err := p.unary()
	for err == nil && strings.HasPrefix(p.s, "&&") {
		p.s = p.s[2:]
		var w bool
		w, err = p.unary()
		v = v && w
	}
	return v, err
}

var definedRE = regexp.MustCompile(`^defined\(?(\w+)\)?`)

func (p *ifParser) unary() (bool, error) {
	switch {
	case strings.HasPrefix(p.s, "!"):
		p.s = p.s[1:]
		v, err := p.unary()
		return !v, err
	case strings.HasPrefix(p.s, "("):
		p.s = p.s[1:]
		v, err := p.or()
		if err != nil {
			return false, err
		}
		if !strings.HasPrefix(p.s, ")") {
			return false, errors.New("missing )")
		}
		p.s = p.s[1:]
		return v, nil
	}
	if m := definedRE.FindStringSubmatch(p.s); m != nil {
		p.s = p.s[len(m[0]):]
		return linuxBuild[m[1]], nil
	}
	return false, fmt.Errorf("cannot evaluate %q", p.s)
}

// tokens splits C source into tokens: string literals (quotes kept),
// identifiers and numbers, and single punctuation characters; comments are
// dropped.
func tokens(src string) []string {
	var out []string
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		case strings.HasPrefix(src[i:], "/*"):
			j := strings.Index(src[i+2:], "*/")
			if j < 0 {
				return out
			}
			i += j + 4
		case strings.HasPrefix(src[i:], "//"):
			j := strings.IndexByte(src[i:], '\n')
			if j < 0 {
				return out
			}
			i += j
		case c == '"' || c == '\'':
			j := i + 1
			for j < len(src) && src[j] != c {
				if src[j] == '\\' {
					j++
				}
				j++
			}
			out = append(out, src[i:min(j+1, len(src))])
			i = j + 1
		case isWord(c):
			j := i
			for j < len(src) && (isWord(src[j]) || src[j] == '.' ||
				(src[j] == '+' || src[j] == '-') && j > i && (src[j-1] == 'e' || src[j-1] == 'E') && src[i] >= '0' && src[i] <= '9') {
				j++
			}
			out = append(out, src[i:j])
			i = j
		default:
			out = append(out, string(c))
			i++
		}
	}
	return out
}

func isWord(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// node is a brace initializer: either a list of elements or a leaf
// expression (its tokens).
type node struct {
	list []node
	expr []string
}

// parseInit parses a brace initializer starting at toks[i] == "{" and
// returns it and the index after its closing brace.
func parseInit(toks []string, i int) (node, int, error) {
	if toks[i] != "{" {
		return node{}, i, fmt.Errorf("want {, got %q", toks[i])
	}
	i++
	var n node
	var cur []string
	for i < len(toks) {
		switch toks[i] {
		case "{":
			sub, j, err := parseInit(toks, i)
			if err != nil {
				return n, j, err
			}
			n.list = append(n.list, sub)
			i = j
			continue
		case ",":
			if cur != nil {
				n.list = append(n.list, node{expr: cur})
				cur = nil
			}
		case "}":
			if cur != nil {
				n.list = append(n.list, node{expr: cur})
			}
			return n, i + 1, nil
		case "(":
			// keep a parenthesised group (function-like macro call) whole
			depth := 0
			for ; i < len(toks); i++ {
				cur = append(cur, toks[i])
				if toks[i] == "(" {
					depth++
				}
				if toks[i] == ")" {
					depth--
					if depth == 0 {
						break
					}
				}
			}
		default:
			cur = append(cur, toks[i])
		}
		i++
	}
	return n, i, errors.New("unterminated initializer")
}

type enumVal struct {
	Name   string
	Hidden bool
}

var enumArrayRE = regexp.MustCompile(`config_enum_entry\s+(\w+)\[\]\s*=\s*\{`)

// enumArrays returns every config_enum_entry array defined in src.
func enumArrays(src string) map[string][]enumVal {
	out := map[string][]enumVal{}
	for _, m := range enumArrayRE.FindAllStringSubmatchIndex(src, -1) {
		name := src[m[2]:m[3]]
		toks := tokens(src[m[1]-1:])
		n, _, err := parseInit(toks, 0)
		if err != nil {
			continue
		}
		var vals []enumVal
		for _, e := range n.list {
			if len(e.list) < 3 || len(e.list[0].expr) != 1 || !strings.HasPrefix(e.list[0].expr[0], `"`) {
				continue // the {NULL, 0, false} terminator
			}
			vals = append(vals, enumVal{Name: unquote(e.list[0].expr[0]), Hidden: strings.Join(e.list[2].expr, "") == "true"})
		}
		out[name] = vals
	}
	return out
}

func unquote(s string) string {
	u, err := strconv.Unquote(s)
	if err != nil {
		return strings.Trim(s, `"`)
	}
	return u
}

var vartypes = map[string]string{"Bool": "bool", "Int": "integer", "Real": "real", "String": "string", "Enum": "enum"}

// table transcribes ConfigureNames<kind>.
func table(src, kind string, enums map[string][]enumVal, macros map[string][][]string) ([]guc, error) {
	re := regexp.MustCompile(`ConfigureNames` + kind + `\[\]\s*=\s*\{`)
	loc := re.FindStringIndex(src)
	if loc == nil {
		return nil, errors.New("table not found")
	}
	toks := tokens(src[loc[1]-1:])
	n, _, err := parseInit(toks, 0)
	if err != nil {
		return nil, err
	}
	var out []guc
	for _, e := range n.list {
		if len(e.list) < 3 || len(e.list[0].list) < 3 {
			return nil, fmt.Errorf("unexpected entry %v", e)
		}
		gen := e.list[0].list
		if len(gen[0].expr) != 1 || gen[0].expr[0] == "NULL" {
			continue // terminator
		}
		g := guc{Name: unquote(gen[0].expr[0]), VarType: vartypes[kind]}
		ctx, ok := contexts[strings.Join(gen[1].expr, "")]
		if !ok {
			return nil, fmt.Errorf("%s: unknown context %v", g.Name, gen[1].expr)
		}
		g.Context = ctx
		var flags []string
		if len(gen) >= 6 {
			for _, t := range gen[5].expr {
				if t != "|" && t != "(" && t != ")" {
					flags = append(flags, t)
				}
			}
		}
		hidden := false
		for _, f := range flags {
			if f == "GUC_NO_SHOW_ALL" {
				hidden = true
			}
			if u, ok := units[f]; ok {
				g.Unit = u
			}
		}
		if hidden {
			continue
		}
		switch kind {
		case "Int", "Real":
			if len(e.list) < 5 {
				return nil, fmt.Errorf("%s: no bounds", g.Name)
			}
			lo, err := evalNum(e.list[3].expr, macros)
			if err != nil {
				return nil, fmt.Errorf("%s: min %v: %w", g.Name, e.list[3].expr, err)
			}
			hi, err := evalNum(e.list[4].expr, macros)
			if err != nil {
				return nil, fmt.Errorf("%s: max %v: %w", g.Name, e.list[4].expr, err)
			}
			g.Min, g.Max = formatBound(lo, kind == "Int"), formatBound(hi, kind == "Int")
		case "Enum":
			// the options array, or ARRAY + N (its entries from the Nth on)
			if len(e.list) < 4 || len(e.list[3].expr) != 1 && len(e.list[3].expr) != 3 {
				return nil, fmt.Errorf("%s: no options array", g.Name)
			}
			opt := e.list[3].expr
			vals, ok := enums[opt[0]]
			if !ok {
				return nil, fmt.Errorf("%s: options array %s not found (not declared extern in the GUC file? see -tree)", g.Name, opt[0])
			}
			if len(opt) == 3 {
				skip, err := strconv.Atoi(opt[2])
				if opt[1] != "+" || err != nil || skip > len(vals) {
					return nil, fmt.Errorf("%s: options %v", g.Name, opt)
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
	return out, nil
}

// formatBound writes a bound as pg_settings does: an integer, or %g for a
// real (DBL_MAX as 1.79769e+308).
func formatBound(f float64, integer bool) string {
	if integer {
		return strconv.FormatFloat(f, 'f', 0, 64)
	}
	return strconv.FormatFloat(f, 'g', 6, 64)
}

// evalNum evaluates a bound: integer and real literals, the macros in
// constants, unary minus, + - * / and parentheses (integer division when
// both sides are integers, as in C).
func evalNum(expr []string, macros map[string][][]string) (float64, error) {
	p := &numParser{toks: expr, macros: macros}
	v, err := p.sum()
	if err == nil && p.i != len(p.toks) {
		err = fmt.Errorf("unexpected %q", p.toks[p.i])
	}
	return v.f, err
}

var casts = map[string]bool{"int": true, "double": true, "size_t": true, "int64": true, "uint64": true, "long": true, "Size": true}

type num struct {
	f   float64
	int bool
}

type numParser struct {
	toks   []string
	i      int
	macros map[string][][]string
	depth  int
}

func (p *numParser) peek() string {
	if p.i < len(p.toks) {
		return p.toks[p.i]
	}
	return ""
}

func (p *numParser) sum() (num, error) {
	v, err := p.product()
	for err == nil && (p.peek() == "+" || p.peek() == "-") {
		op := p.toks[p.i]
		p.i++
		var w num
		w, err = p.product()
		if op == "+" {
			v = num{v.f + w.f, v.int && w.int}
		} else {
			v = num{v.f - w.f, v.int && w.int}
		}
	}
	return v, err
}

func (p *numParser) product() (num, error) {
	v, err := p.unary()
	for err == nil && (p.peek() == "*" || p.peek() == "/") {
		op := p.toks[p.i]
		p.i++
		var w num
		w, err = p.unary()
		switch {
		case op == "*":
			v = num{v.f * w.f, v.int && w.int}
		case w.f == 0:
			err = errors.New("division by zero")
		case v.int && w.int:
			v = num{math.Trunc(v.f / w.f), true}
		default:
			v = num{v.f / w.f, false}
		}
	}
	return v, err
}

func (p *numParser) unary() (num, error) {
	t := p.peek()
	switch {
	case t == "":
		return num{}, errors.New("unexpected end")
	case t == "-":
		p.i++
		v, err := p.unary()
		return num{-v.f, v.int}, err
	case t == "(":
		p.i++
		// a cast such as (double) or (int)
		if p.i+1 < len(p.toks) && p.toks[p.i+1] == ")" && casts[p.toks[p.i]] {
			cast := p.toks[p.i]
			p.i += 2
			v, err := p.unary()
			if cast == "int" && v.f > math.MaxInt32 {
				v.f = math.MaxInt32 // only ever applied to values already bounded by INT_MAX
			}
			return num{v.f, cast != "double"}, err
		}
		v, err := p.sum()
		if err != nil {
			return v, err
		}
		if p.peek() != ")" {
			return v, errors.New("missing )")
		}
		p.i++
		return v, nil
	case t[0] >= '0' && t[0] <= '9' || t[0] == '.':
		p.i++
		s := strings.TrimRight(t, "LlUu")
		if strings.ContainsAny(s, ".eE") && !strings.HasPrefix(s, "0x") {
			f, err := strconv.ParseFloat(s, 64)
			return num{f, false}, err
		}
		n, err := strconv.ParseInt(s, 0, 64)
		return num{float64(n), true}, err
	}
	if (t == "Min" || t == "Max") && p.i+1 < len(p.toks) && p.toks[p.i+1] == "(" {
		p.i += 2
		a, err := p.sum()
		if err != nil {
			return a, err
		}
		if p.peek() != "," {
			return a, fmt.Errorf("%s: want ,", t)
		}
		p.i++
		b, err := p.sum()
		if err != nil {
			return b, err
		}
		if p.peek() != ")" {
			return b, fmt.Errorf("%s: missing )", t)
		}
		p.i++
		if t == "Min" {
			return num{math.Min(a.f, b.f), a.int && b.int}, nil
		}
		return num{math.Max(a.f, b.f), a.int && b.int}, nil
	}
	if v, ok := constants[t]; ok && isWord(t[0]) {
		p.i++
		return num{v, t != "DBL_MAX"}, nil
	}
	if defs := p.macros[t]; len(defs) > 0 && p.depth < 20 {
		for _, d := range defs[1:] {
			if strings.Join(d, " ") != strings.Join(defs[0], " ") {
				return num{}, fmt.Errorf("%s is defined differently in the headers (%v, %v): add it to constants with its source", t, defs[0], d)
			}
		}
		sub := &numParser{toks: defs[0], macros: p.macros, depth: p.depth + 1}
		v, err := sub.sum()
		if err == nil && sub.i != len(sub.toks) {
			err = fmt.Errorf("unexpected %q", sub.toks[sub.i])
		}
		if err != nil {
			return v, fmt.Errorf("%s: %w", t, err)
		}
		p.i++
		return v, nil
	}
	return num{}, fmt.Errorf("unknown identifier %q (add it to constants with its source)", t)
}

type sourceOptions struct {
	GUC, Tree   string
	Major       int
	VersionNum  int
	Cite        string
	Extra, Note string
	Omit        string
	Values      bool
	Out         string
}

// runSource writes data/pgNN.tsv (or, with Values, data/pgNN.values.tsv)
// transcribed from a release's GUC file.
func runSource(o sourceOptions) error {
	if !pgconf.Supported(o.Major) {
		return fmt.Errorf("-major %d is not one of %v", o.Major, pgconf.Majors())
	}
	if o.Cite == "" {
		return errors.New("-cite is required: the file's header must say exactly where it comes from")
	}
	if o.VersionNum/10000 != o.Major {
		return fmt.Errorf("-version-num %d is not a PostgreSQL %d release", o.VersionNum, o.Major)
	}
	constants["PG_VERSION_NUM"] = float64(o.VersionNum)
	read, from := transcribe, "the GUC tables (ConfigureNamesBool/Int/Real/String/Enum and\n#   their enum option arrays)"
	if strings.HasSuffix(o.GUC, ".dat") {
		// PostgreSQL 19 on: guc_parameters.dat.
		read, from = transcribeDat, "guc_parameters.dat (and the enum option\n#   arrays it names)"
	}
	gs, err := read(o.GUC, o.Tree)
	if err != nil {
		return err
	}
	if o.Omit != "" {
		if o.Note == "" {
			return errors.New("-omit needs -note")
		}
		drop := map[string]bool{}
		for _, n := range strings.Split(o.Omit, ",") {
			drop[n] = true
		}
		kept := gs[:0]
		for _, g := range gs {
			if drop[g.Name] {
				delete(drop, g.Name)
				continue
			}
			kept = append(kept, g)
		}
		if len(drop) > 0 {
			return fmt.Errorf("-omit names parameters the source does not have: %v", drop)
		}
		gs = kept
	}
	if o.Extra != "" {
		if o.Note == "" {
			return errors.New("-extra needs -note")
		}
		for _, e := range strings.Split(o.Extra, ",") {
			f := strings.Split(e, ":")
			switch {
			case len(f) == 3 && (f[2] == "bool" || f[2] == "string"):
				gs = append(gs, guc{Name: f[0], Context: f[1], VarType: f[2]})
			case len(f) == 4 && f[2] == "enum" && f[3] != "":
				gs = append(gs, guc{Name: f[0], Context: f[1], VarType: f[2], Enum: strings.Split(f[3], "|")})
			default:
				return fmt.Errorf("-extra %q: want NAME:CONTEXT:bool, NAME:CONTEXT:string or NAME:CONTEXT:enum:VALUE|VALUE…", e)
			}
		}
		sortGUCs(gs)
	}
	var b strings.Builder
	cmd := fmt.Sprintf("go run ./gen -guc GUCFILE -tree SRC -major %d -version-num %d -cite %q", o.Major, o.VersionNum, o.Cite)
	if o.Omit != "" {
		cmd += " -omit " + o.Omit
	}
	if o.Extra != "" {
		cmd += fmt.Sprintf(" -extra %q", o.Extra)
	}
	if o.Note != "" {
		cmd += fmt.Sprintf(" -note %q", o.Note)
	}
	if o.Values {
		fmt.Fprintf(&b, "# PostgreSQL %d value domains: name<TAB>vartype<TAB>unit<TAB>min_val<TAB>max_val<TAB>enumvals ('|'-separated), as pg_settings lists them.\n", o.Major)
		cmd += " -values"
	} else {
		fmt.Fprintf(&b, "# PostgreSQL %d core configuration parameters: name<TAB>context<TAB>vartype, as pg_settings lists them.\n", o.Major)
	}
	fmt.Fprintf(&b, "# Source: %s\n", o.Cite)
	fmt.Fprintf(&b, "#   Transcribed by internal/pgconf/gen from %s for a Linux build (OpenSSL, LZ4, zstd, no assertions or debug macros),\n", from)
	b.WriteString("#   leaving out GUC_NO_SHOW_ALL entries. Generated file; regenerate, do not edit:\n")
	fmt.Fprintf(&b, "#   cd internal/pgconf && %s -o FILE\n", cmd)
	if o.Note != "" {
		fmt.Fprintf(&b, "# %s\n", o.Note)
	}
	for _, g := range gs {
		if !pgconf.Context(g.Context).Valid() || !pgconf.VarType(g.VarType).Valid() {
			return fmt.Errorf("%s: bad context %q or vartype %q", g.Name, g.Context, g.VarType)
		}
		if o.Values {
			for _, v := range g.Enum {
				if strings.ContainsAny(v, "|\t\n") {
					return fmt.Errorf("parameter %s: enum value %q cannot be written", g.Name, v)
				}
			}
			fmt.Fprintf(&b, "%s\t%s\t%s\t%s\t%s\t%s\n", g.Name, g.VarType, g.Unit, g.Min, g.Max, strings.Join(g.Enum, "|"))
		} else {
			fmt.Fprintf(&b, "%s\t%s\t%s\n", g.Name, g.Context, g.VarType)
		}
	}
	if o.Out == "" {
		_, err = os.Stdout.WriteString(b.String())
		return err
	}
	return os.WriteFile(o.Out, []byte(b.String()), 0o644)
}

var defineRE = regexp.MustCompile(`(?m)^\s*#\s*define\s+(\w+)[ \t]+(.+)$`)

// objectMacros collects the object-like #defines of the tree's headers
// (src/include) and of the GUC file itself: name -> every definition's
// tokens. A bound naming a macro with two different definitions is an error
// unless constants pins it.
func objectMacros(tree, gucSrc string) (map[string][][]string, error) {
	out := map[string][][]string{}
	add := func(src string) {
		src = strings.ReplaceAll(src, "\\\n", " ")
		for _, m := range defineRE.FindAllStringSubmatch(src, -1) {
			out[m[1]] = append(out[m[1]], tokens(m[2]))
		}
	}
	add(gucSrc)
	if tree == "" {
		return out, nil
	}
	err := filepath.WalkDir(filepath.Join(tree, "include"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".h") {
			return err
		}
		raw, err := os.ReadFile(p)
		if err == nil {
			add(string(raw))
		}
		return err
	})
	return out, err
}

// sortGUCs sorts by name, bytewise, as pg_settings lists them.
func sortGUCs(gs []guc) {
	sort.Slice(gs, func(i, j int) bool { return gs[i].Name < gs[j].Name })
}
