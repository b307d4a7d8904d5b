package pgconf

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
)

// Domain is what a parameter's values may be: pg_settings' unit, min_val,
// max_val and enumvals columns.
type Domain struct {
	VarType VarType
	// Unit is pg_settings' unit of an integer or real ("kB", "8kB", "ms",
	// …), empty for none.
	Unit string
	// Min and Max bound an integer or real, in Unit.
	Min, Max float64
	// Enum lists the visible values of an enum (pg_settings' enumvals).
	Enum []string
}

// DomainMajor is the major whose value domains were read from a live
// server (data/pg15.values.tsv); every other major's were transcribed from
// its release's GUC tables by ./gen (data/pgNN.values.tsv, sources in each
// file's header and docs/parameters.md).
const DomainMajor = 15

// ErrInvalidValue is returned by CheckValue; test with errors.Is.
var ErrInvalidValue = errors.New("invalid value")

// CheckValue checks value as PostgreSQL's GUC parser checks it for the
// parameter in major (guc.c's parse_bool, parse_int, parse_real,
// convert_to_base_unit and config_enum_lookup_by_name): booleans in every
// spelling PostgreSQL accepts, integers (decimal, octal, hexadecimal or
// fractional, rounded) and reals with the parameter's unit and within its
// bounds in that major, enums case-insensitively including the spellings
// pg_settings hides. Every supported major has its own domains
// (data/pgNN.values.tsv). String values, and extension parameters this
// package has no domain for, are checked only for their type's syntax, with
// any unit allowed.
//
// Check hooks of string parameters (time zone names, DateStyle,
// search_path) and bounds that depend on other parameters are not
// emulated: postgres still refuses a wrong one at reload, and the instance
// manager reports it (rejectedParameters).
func CheckValue(major int, name, value string) error {
	p, err := Check(major, name)
	if err != nil {
		return err
	}
	d, _ := domainOf(major, p)
	if err := checkDomain(d, value); err != nil {
		return fmt.Errorf("%w for %s (%s): %v", ErrInvalidValue, p.Name, p.VarType, err)
	}
	return nil
}

// DomainOf returns the domain CheckValue uses for a parameter of major, and
// whether it is exact (read live for that major).
func DomainOf(major int, name string) (Domain, bool, error) {
	p, err := Check(major, name)
	if err != nil {
		return Domain{}, false, err
	}
	d, exact := domainOf(major, p)
	return d, exact, nil
}

func domainOf(major int, p Param) (Domain, bool) {
	if IsCustom(p.Name) {
		d, ok := customDomains[strings.ToLower(p.Name)]
		if !ok && (p.VarType == VarBool || p.VarType == VarString) {
			d, ok = Domain{VarType: p.VarType}, true
		}
		switch {
		case ok && major == DomainMajor:
			return d, true
		case ok && d.VarType == p.VarType:
			// read live from 15 only: the unit and values, no bounds
			d.Min, d.Max = math.Inf(-1), math.Inf(1)
			return d, false
		}
		return Domain{VarType: p.VarType, Unit: anyUnit, Min: math.Inf(-1), Max: math.Inf(1)}, false
	}
	if d, ok := domains()[major][strings.ToLower(p.Name)]; ok && d.VarType == p.VarType {
		return d, true
	}
	return Domain{VarType: p.VarType, Unit: anyUnit, Min: math.Inf(-1), Max: math.Inf(1)}, false
}

// anyUnit marks a number whose unit pgsync does not know: any memory or
// time unit is accepted.
const anyUnit = "*"

func checkDomain(d Domain, v string) error {
	switch d.VarType {
	case VarBool:
		if _, ok := parseBool(v); !ok {
			return errors.New(`want on, off, true, false, yes, no, 1 or 0`)
		}
	case VarInteger:
		n, err := parseNumber(v, d.Unit, true)
		if err != nil {
			return err
		}
		if n > math.MaxInt32 || n < math.MinInt32 {
			return fmt.Errorf("%q exceeds the integer range", v)
		}
		return checkBounds(d, n, v)
	case VarReal:
		n, err := parseNumber(v, d.Unit, false)
		if err != nil {
			return err
		}
		if math.IsInf(n, 0) {
			return fmt.Errorf("%q is out of range", v)
		}
		return checkBounds(d, n, v)
	case VarEnum:
		if d.Enum == nil {
			return nil
		}
		for _, e := range enumSpellings(d.Enum) {
			if strings.EqualFold(v, e) {
				return nil
			}
		}
		return fmt.Errorf("%q is not one of %s", v, quoteList(d.Enum))
	}
	return nil
}

func checkBounds(d Domain, n float64, v string) error {
	if n < d.Min || n > d.Max {
		return fmt.Errorf("%q is outside the allowed range %s .. %s", v, bound(d.Min, d.Unit), bound(d.Max, d.Unit))
	}
	return nil
}

func bound(f float64, unit string) string {
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		s = strconv.FormatFloat(f, 'f', -1, 64)
	}
	if unit != "" && unit != anyUnit {
		s += " (" + unit + ")"
	}
	return s
}

func quoteList(vs []string) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = strconv.Quote(v)
	}
	return strings.Join(q, ", ")
}

// enumSpellings adds the values PostgreSQL accepts but pg_settings does not
// list (the `hidden` entries of guc_tables' option arrays): the boolean
// spellings of every enum that has on and off, and the old names of a few
// values.
func enumSpellings(visible []string) []string {
	out := append([]string(nil), visible...)
	has := func(s string) bool {
		for _, v := range visible {
			if v == s {
				return true
			}
		}
		return false
	}
	if has("on") && has("off") {
		out = append(out, "true", "false", "yes", "no", "1", "0")
	}
	if has("replica") && has("logical") { // wal_level
		out = append(out, "archive", "hot_standby")
	}
	if has("debug5") && has("notice") && !has("info") { // client_min_messages, trace_recovery_messages
		out = append(out, "info")
	}
	return out
}

// parseBool is PostgreSQL's parse_bool: case-insensitive prefixes of true,
// false, yes and no, on, off (at least "of"), 1 and 0.
func parseBool(v string) (val, ok bool) {
	l := strings.ToLower(v)
	prefix := func(word string, minLen int) bool {
		return len(l) >= minLen && len(l) <= len(word) && word[:len(l)] == l
	}
	switch {
	case prefix("true", 1), prefix("yes", 1), prefix("on", 2), l == "1":
		return true, true
	case prefix("false", 1), prefix("no", 1), prefix("off", 2), l == "0":
		return false, true
	}
	return false, false
}

// isSpace is C's isspace in the C locale.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// parseNumber parses an integer (integer true: strtol with base 0, then
// strtod if that stops at '.', 'e' or 'E' or overflows) or a real (strtod),
// then an optional unit after optional spaces, and returns the value in
// the parameter's unit, rounded as PostgreSQL rounds it.
func parseNumber(v, unit string, integer bool) (float64, error) {
	var (
		n    float64
		rest string
		ok   bool
	)
	if integer {
		n, rest, ok = strtol(v)
		if strings.HasPrefix(rest, ".") || strings.HasPrefix(rest, "e") || strings.HasPrefix(rest, "E") || !ok && rest == "overflow" {
			n, rest, ok = strtod(v)
		}
	} else {
		n, rest, ok = strtod(v)
	}
	if !ok || math.IsNaN(n) {
		return 0, fmt.Errorf("%q is not a number", v)
	}
	rest = strings.TrimLeft(rest, " \t\n\v\f\r")
	if rest != "" {
		if unit == "" {
			return 0, fmt.Errorf("%q: this parameter takes no unit", v)
		}
		u := rest
		if i := strings.IndexAny(u, " \t\n\v\f\r"); i >= 0 {
			if strings.TrimLeft(u[i:], " \t\n\v\f\r") != "" {
				return 0, fmt.Errorf("%q: unexpected text after the unit", v)
			}
			u = u[:i]
		}
		conv, ok := convertUnit(n, u, unit)
		if !ok {
			return 0, fmt.Errorf("%q: %s", v, unitHint(unit))
		}
		n = conv
	}
	if integer {
		n = math.RoundToEven(n)
	}
	return n, nil
}

var (
	memoryUnits = []struct {
		name  string
		bytes float64
	}{{"TB", 1 << 40}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"kB", 1 << 10}, {"B", 1}}
	timeUnits = []struct {
		name string
		ms   float64
	}{{"d", 86400000}, {"h", 3600000}, {"min", 60000}, {"s", 1000}, {"ms", 1}, {"us", 0.001}}
	memoryBase = map[string]float64{"B": 1, "kB": 1 << 10, "MB": 1 << 20, "8kB": 8 << 10, "16MB": 16 << 20}
	timeBase   = map[string]float64{"ms": 1, "s": 1000, "min": 60000}
)

// convertUnit is convert_to_base_unit: value in unit u, converted to the
// parameter's base unit and rounded to a whole number of the next smaller
// unit of the table (so "30.1GB" is a whole number of MB). base anyUnit
// accepts every unit and converts nothing.
func convertUnit(value float64, u, base string) (float64, bool) {
	if base == anyUnit {
		for _, m := range memoryUnits {
			if m.name == u {
				return value, true
			}
		}
		for _, t := range timeUnits {
			if t.name == u {
				return value, true
			}
		}
		return 0, false
	}
	if b, ok := memoryBase[base]; ok {
		for i, m := range memoryUnits {
			if m.name != u {
				continue
			}
			c := value * m.bytes / b
			if i+1 < len(memoryUnits) {
				next := memoryUnits[i+1].bytes / b
				c = math.RoundToEven(c/next) * next
			}
			return c, true
		}
		return 0, false
	}
	if b, ok := timeBase[base]; ok {
		for i, t := range timeUnits {
			if t.name != u {
				continue
			}
			c := value * t.ms / b
			if i+1 < len(timeUnits) {
				next := timeUnits[i+1].ms / b
				c = math.RoundToEven(c/next) * next
			}
			return c, true
		}
	}
	return 0, false
}

func unitHint(base string) string {
	var names []string
	_, mem := memoryBase[base]
	_, tim := timeBase[base]
	if mem || base == anyUnit {
		for _, m := range memoryUnits {
			names = append(names, m.name)
		}
	}
	if tim || base == anyUnit {
		for _, t := range timeUnits {
			names = append(names, t.name)
		}
	}
	if len(names) == 0 {
		return "this parameter takes no unit"
	}
	return "valid units are " + strings.Join(names, ", ") + " (case-sensitive)"
}

// strtol is C's strtol(s, &end, 0) on a 64-bit long: leading spaces, a
// sign, then hexadecimal (0x), octal (leading 0) or decimal digits. ok is
// false when no digit was read; rest "overflow" with ok false reports
// ERANGE.
func strtol(s string) (n float64, rest string, ok bool) {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	base := 10
	switch {
	case i+2 < len(s) && s[i] == '0' && (s[i+1] == 'x' || s[i+1] == 'X') && isDigit(s[i+2], 16):
		base = 16
		i += 2
	case i < len(s) && s[i] == '0':
		base = 8
	}
	start := i
	var acc uint64
	overflow := false
	for i < len(s) && isDigit(s[i], base) {
		d := digitVal(s[i])
		if acc > (math.MaxInt64-uint64(d))/uint64(base) {
			overflow = true
		}
		acc = acc*uint64(base) + uint64(d)
		i++
	}
	if i == start {
		return 0, s, false
	}
	if overflow {
		return 0, "overflow", false
	}
	n = float64(acc)
	if neg {
		n = -n
	}
	return n, s[i:], true
}

func isDigit(c byte, base int) bool {
	switch {
	case c >= '0' && c <= '9':
		return int(c-'0') < base
	case base == 16 && (c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'):
		return true
	}
	return false
}

func digitVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	}
	return int(c-'A') + 10
}

// strtod is glibc's strtod: leading spaces, a sign, then a decimal or
// hexadecimal (0x, with an optional binary exponent p) number, or inf,
// infinity, nan. A result that overflows or falls below the normal range
// is ERANGE, which PostgreSQL refuses (ok false).
func strtod(s string) (n float64, rest string, ok bool) {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	for _, word := range []string{"infinity", "inf", "nan"} {
		if len(s)-i >= len(word) && strings.EqualFold(s[i:i+len(word)], word) {
			f := math.Inf(1)
			if word == "nan" {
				f = math.NaN()
			}
			if neg {
				f = -f
			}
			return f, s[i+len(word):], true
		}
	}
	if i+2 < len(s) && s[i] == '0' && (s[i+1] == 'x' || s[i+1] == 'X') && (isDigit(s[i+2], 16) || s[i+2] == '.' && i+3 < len(s) && isDigit(s[i+3], 16)) {
		return hexFloat(s, i+2, neg)
	}
	start := i
	digits, nonzero := 0, false
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		nonzero = nonzero || s[i] != '0'
		i++
		digits++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			nonzero = nonzero || s[i] != '0'
			i++
			digits++
		}
	}
	if digits == 0 {
		return 0, s, false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		j := i + 1
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		if j < len(s) && s[j] >= '0' && s[j] <= '9' {
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			i = j
		}
	}
	f, err := strconv.ParseFloat(s[start:i], 64)
	if err != nil || nonzero && math.Abs(f) < minNormal {
		return 0, s, false // ERANGE
	}
	if neg {
		f = -f
	}
	return f, s[i:], true
}

// minNormal is DBL_MIN: glibc's strtod reports ERANGE below it.
const minNormal = 2.2250738585072014e-308

// hexFloat reads hexadecimal digits, an optional fraction and an optional
// binary exponent from s[i:].
func hexFloat(s string, i int, neg bool) (float64, string, bool) {
	var mant float64
	nonzero := false
	for i < len(s) && isDigit(s[i], 16) {
		mant = mant*16 + float64(digitVal(s[i]))
		nonzero = nonzero || s[i] != '0'
		i++
	}
	scale := 1.0
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && isDigit(s[i], 16) {
			scale /= 16
			mant += float64(digitVal(s[i])) * scale
			nonzero = nonzero || s[i] != '0'
			i++
		}
	}
	exp := 0
	if i < len(s) && (s[i] == 'p' || s[i] == 'P') {
		j := i + 1
		eneg := false
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			eneg = s[j] == '-'
			j++
		}
		if j < len(s) && s[j] >= '0' && s[j] <= '9' {
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				if exp < 100000 {
					exp = exp*10 + int(s[j]-'0')
				}
				j++
			}
			if eneg {
				exp = -exp
			}
			i = j
		}
	}
	f := math.Ldexp(mant, exp)
	if math.IsInf(f, 0) || nonzero && f < minNormal {
		return 0, s, false // ERANGE
	}
	if neg {
		f = -f
	}
	return f, s[i:], true
}

// domains holds every supported major's value domains, parsed once on
// first use; a missing or malformed file is a build defect the tests catch.
var domains = sync.OnceValue(func() map[int]map[string]Domain {
	out := make(map[int]map[string]Domain, MaxMajor-MinMajor+1)
	for _, m := range Majors() {
		name := fmt.Sprintf("data/pg%d.values.tsv", m)
		raw, err := dataFS.ReadFile(name)
		if err != nil {
			panic(fmt.Sprintf("pgconf: embedded %s: %v", name, err))
		}
		t, err := parseDomains(raw)
		if err != nil {
			panic(fmt.Sprintf("pgconf: embedded %s: %v", name, err))
		}
		out[m] = t
	}
	return out
})

// parseDomains reads name, vartype, unit, min_val, max_val, enumvals
// lines. Bounds at ±1.79769e+308 (DBL_MAX as pg_settings prints it, to six
// digits) mean unbounded.
func parseDomains(raw []byte) (map[string]Domain, error) {
	t := make(map[string]Domain)
	sc := bufio.NewScanner(bytes.NewReader(raw))
	line := 0
	for sc.Scan() {
		line++
		s := sc.Text()
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		f := strings.Split(s, "\t")
		if len(f) != 6 {
			return nil, fmt.Errorf("line %d: want 6 tab-separated fields, got %d", line, len(f))
		}
		d := Domain{VarType: VarType(f[1]), Unit: f[2], Min: math.Inf(-1), Max: math.Inf(1)}
		if !d.VarType.Valid() {
			return nil, fmt.Errorf("line %d: %s: unknown vartype %q", line, f[0], f[1])
		}
		if d.Unit != "" {
			_, mem := memoryBase[d.Unit]
			_, tim := timeBase[d.Unit]
			if !mem && !tim {
				return nil, fmt.Errorf("line %d: %s: unknown unit %q", line, f[0], d.Unit)
			}
		}
		for i, b := range []*float64{&d.Min, &d.Max} {
			if f[3+i] == "" {
				continue
			}
			v, err := strconv.ParseFloat(f[3+i], 64)
			if err != nil {
				return nil, fmt.Errorf("line %d: %s: bound %q: %v", line, f[0], f[3+i], err)
			}
			if math.Abs(v) < 1.79769e308 {
				*b = v
			}
		}
		if f[5] != "" {
			d.Enum = strings.Split(f[5], "|")
		}
		t[strings.ToLower(f[0])] = d
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(t) == 0 {
		return nil, errors.New("no parameters")
	}
	return t, nil
}

// NumericValue returns an integer or real parameter's value in its unit,
// as postgres would read it (CheckValue's parser).
func NumericValue(major int, name, value string) (float64, error) {
	p, err := Check(major, name)
	if err != nil {
		return 0, err
	}
	d, _ := domainOf(major, p)
	if d.VarType != VarInteger && d.VarType != VarReal {
		return 0, fmt.Errorf("%s is not a number (%s)", p.Name, d.VarType)
	}
	if err := checkDomain(d, value); err != nil {
		return 0, fmt.Errorf("%w for %s (%s): %v", ErrInvalidValue, p.Name, p.VarType, err)
	}
	return parseNumber(value, d.Unit, d.VarType == VarInteger)
}
