package pgconf

import (
	"bufio"
	"bytes"
	"embed"
	"errors"
	"fmt"
	"github.com/hbollon/go-edlib"
	"sort"
	"strings"
	"sync"
)

// Source says in one line where the tables come from.
const Source = "PostgreSQL 15: live pg_settings of PostgreSQL 15.18; 19: live pg_settings of the release candidate 19rc1 " +
	"(Debian 19~rc1-1); 13, 14, 16, 17, 18: GUC tables of upstream " +
	"release sources (guc.c 13.1/14.5, guc_tables.c 16.2/17.4/18.6) plus later minor-release additions; see docs/parameters.md"

// MinMajor and MaxMajor bound the supported PostgreSQL major versions.
const (
	MinMajor = 13
	MaxMajor = 19
)

// Context is the `context` column of pg_settings: when a parameter can be
// changed.
type Context string

// The contexts, in pg_settings spelling.
const (
	// ContextInternal parameters cannot be set at all (compile-time or
	// initdb-time values, such as block_size).
	ContextInternal Context = "internal"
	// ContextPostmaster parameters take effect only at server start.
	ContextPostmaster Context = "postmaster"
	// ContextSighup parameters take effect on reload (SIGHUP).
	ContextSighup Context = "sighup"
	// ContextSuperuserBackend parameters are read at session start; a
	// reload applies them to sessions started afterwards.
	ContextSuperuserBackend Context = "superuser-backend"
	// ContextBackend is like ContextSuperuserBackend, settable by any user
	// at connection start.
	ContextBackend Context = "backend"
	// ContextSuperuser parameters can be changed at any time by a superuser
	// (SET) and by reload.
	ContextSuperuser Context = "superuser"
	// ContextUser parameters can be changed at any time by any user (SET)
	// and by reload.
	ContextUser Context = "user"
)

// Valid reports whether c is one of the seven contexts.
func (c Context) Valid() bool {
	switch c {
	case ContextInternal, ContextPostmaster, ContextSighup, ContextSuperuserBackend,
		ContextBackend, ContextSuperuser, ContextUser:
		return true
	}
	return false
}

// NeedsRestart reports whether changing a parameter of this context in the
// configuration takes a server restart. Only postmaster parameters do;
// internal parameters cannot be changed at all (see Settable).
func NeedsRestart(ctx Context) bool { return ctx == ContextPostmaster }

// Settable reports whether a parameter of this context can be set in the
// server configuration at all (everything but internal).
func Settable(ctx Context) bool { return ctx.Valid() && ctx != ContextInternal }

// VarType is the `vartype` column of pg_settings.
type VarType string

// The variable types.
const (
	VarBool    VarType = "bool"
	VarInteger VarType = "integer"
	VarReal    VarType = "real"
	VarString  VarType = "string"
	VarEnum    VarType = "enum"
)

// Valid reports whether t is one of the five variable types.
func (t VarType) Valid() bool {
	switch t {
	case VarBool, VarInteger, VarReal, VarString, VarEnum:
		return true
	}
	return false
}

// Param describes one parameter in one major version.
type Param struct {
	// Name is the canonical spelling (e.g. "DateStyle").
	Name    string
	Context Context
	VarType VarType
}

// Supported reports whether major is one of the majors the tables cover.
func Supported(major int) bool { return major >= MinMajor && major <= MaxMajor }

// Majors returns the supported majors in ascending order.
func Majors() []int {
	out := make([]int, 0, MaxMajor-MinMajor+1)
	for m := MinMajor; m <= MaxMajor; m++ {
		out = append(out, m)
	}
	return out
}

// Lookup returns the context of a core parameter in the given major. Names
// are case-insensitive, as in PostgreSQL. ok is false for unsupported majors
// and for names that major does not have (custom dotted names included; see
// LookupCustom).
func Lookup(major int, name string) (ctx Context, ok bool) {
	p, ok := Info(major, name)
	return p.Context, ok
}

// Info is Lookup returning the whole description.
func Info(major int, name string) (Param, bool) {
	t, ok := tables()[major]
	if !ok {
		return Param{}, false
	}
	p, ok := t[strings.ToLower(name)]
	return p, ok
}

// Params returns every core parameter of the major, sorted by lower-case
// name, or nil for an unsupported major.
func Params(major int) []Param {
	t, ok := tables()[major]
	if !ok {
		return nil
	}
	out := make([]Param, 0, len(t))
	for _, p := range t {
		out = append(out, p)
	}
	sortParams(out)
	return out
}

func sortParams(ps []Param) {
	sort.Slice(ps, func(i, j int) bool { return strings.ToLower(ps[i].Name) < strings.ToLower(ps[j].Name) })
}

// MajorsWith returns the supported majors that have the core parameter,
// ascending (empty if none).
func MajorsWith(name string) []int {
	var out []int
	for _, m := range Majors() {
		if _, ok := Info(m, name); ok {
			out = append(out, m)
		}
	}
	return out
}

// IsCustom reports whether name is a custom (extension or placeholder)
// parameter name: PostgreSQL treats every name containing a dot that way.
func IsCustom(name string) bool { return strings.Contains(name, ".") }

// Errors returned by Check; test with errors.Is.
var (
	ErrUnsupportedMajor = errors.New("unsupported PostgreSQL major version")
	ErrUnknownParameter = errors.New("unknown configuration parameter")
	ErrNotSettable      = errors.New("configuration parameter cannot be set")
	ErrUnknownCustom    = errors.New("custom configuration parameter not known to pgsync")
)

// Check resolves a parameter a user wants to set in the given major:
//
//   - a core parameter: its description, or ErrNotSettable for internal ones;
//   - a custom (dotted) name in the LookupCustom table: its description
//     (VarType as the extension defines it);
//   - any other custom name: ErrUnknownCustom — PostgreSQL accepts it as a
//     placeholder, and whether a change needs a restart depends on the
//     extension, so the caller decides;
//   - anything else: ErrUnknownParameter, naming the majors that do have it
//     or a close spelling when there is one.
func Check(major int, name string) (Param, error) {
	if !Supported(major) {
		return Param{}, fmt.Errorf("%w: %d (supported: %d to %d)", ErrUnsupportedMajor, major, MinMajor, MaxMajor)
	}
	if IsCustom(name) {
		if p, ok := customInfo(name, major); ok {
			return p, nil
		}
		return Param{}, fmt.Errorf("%w: %q", ErrUnknownCustom, name)
	}
	p, ok := Info(major, name)
	if !ok {
		if in := MajorsWith(name); len(in) > 0 {
			return Param{}, fmt.Errorf("%w: %q does not exist in PostgreSQL %d (it exists in %s)",
				ErrUnknownParameter, name, major, majorList(in))
		}
		if s := suggest(major, name); s != "" {
			return Param{}, fmt.Errorf("%w: %q in PostgreSQL %d (did you mean %q?)", ErrUnknownParameter, name, major, s)
		}
		return Param{}, fmt.Errorf("%w: %q in PostgreSQL %d", ErrUnknownParameter, name, major)
	}
	if !Settable(p.Context) {
		return p, fmt.Errorf("%w: %q is %s (read-only, fixed at build or initdb time)", ErrNotSettable, p.Name, p.Context)
	}
	return p, nil
}

func majorList(ms []int) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = fmt.Sprint(m)
	}
	return strings.Join(parts, ", ")
}

// suggest returns the parameter of major closest to name when it is close
// enough to be a likely typo, else "".
func suggest(major int, name string) string {
	name = strings.ToLower(name)
	best, bestD := "", 3 // accept distance <= 2
	for _, p := range Params(major) {
		if d := edlib.LevenshteinDistance(name, strings.ToLower(p.Name)); d < bestD {
			best, bestD = p.Name, d
		}
	}
	return best
}

// distributionParameters are added by distribution packaging, not by
// upstream PostgreSQL, and so are not in the tables.
var distributionParameters = map[string]string{
	// Debian / apt.postgresql.org patch (used for building extensions
	// into a staging directory); PGDG packages carry it for all majors.
	"extension_destdir": "Debian/apt.postgresql.org packaging patch",
}

// DistributionParameters lists the known parameters that distribution
// builds add on top of upstream PostgreSQL (sorted). They are deliberately
// not in the tables: an image built elsewhere would reject them.
func DistributionParameters() []string {
	out := make([]string, 0, len(distributionParameters))
	for n := range distributionParameters {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// IsDistributionParameter reports whether name is one of
// DistributionParameters.
func IsDistributionParameter(name string) bool {
	_, ok := distributionParameters[strings.ToLower(name)]
	return ok
}

//go:embed data/*.tsv
var dataFS embed.FS

// tables parses the embedded data once, on first use (not at package init,
// so that ./gen can run while a data file is being regenerated). Malformed
// embedded data is a build defect caught by the tests; it panics.
var tables = sync.OnceValue(func() map[int]map[string]Param {
	out := make(map[int]map[string]Param, MaxMajor-MinMajor+1)
	for _, m := range Majors() {
		name := fmt.Sprintf("data/pg%d.tsv", m)
		raw, err := dataFS.ReadFile(name)
		if err != nil {
			panic(fmt.Sprintf("pgconf: embedded %s: %v", name, err))
		}
		t, err := parseTable(raw)
		if err != nil {
			panic(fmt.Sprintf("pgconf: embedded %s: %v", name, err))
		}
		out[m] = t
	}
	return out
})

// parseTable reads name<TAB>context<TAB>vartype lines; '#' lines and blank
// lines are ignored.
func parseTable(raw []byte) (map[string]Param, error) {
	t := make(map[string]Param)
	sc := bufio.NewScanner(bytes.NewReader(raw))
	line := 0
	for sc.Scan() {
		line++
		s := sc.Text()
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		f := strings.Split(s, "\t")
		if len(f) != 3 {
			return nil, fmt.Errorf("line %d: want 3 tab-separated fields, got %d", line, len(f))
		}
		p := Param{Name: f[0], Context: Context(f[1]), VarType: VarType(f[2])}
		switch {
		case p.Name == "" || IsCustom(p.Name):
			return nil, fmt.Errorf("line %d: bad parameter name %q", line, p.Name)
		case !p.Context.Valid():
			return nil, fmt.Errorf("line %d: %s: unknown context %q", line, p.Name, p.Context)
		case !p.VarType.Valid():
			return nil, fmt.Errorf("line %d: %s: unknown vartype %q", line, p.Name, p.VarType)
		}
		key := strings.ToLower(p.Name)
		if _, dup := t[key]; dup {
			return nil, fmt.Errorf("line %d: duplicate parameter %s", line, p.Name)
		}
		t[key] = p
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(t) == 0 {
		return nil, errors.New("no parameters")
	}
	return t, nil
}
