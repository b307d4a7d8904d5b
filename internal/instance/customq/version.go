package customq

import (
	"fmt"
	"strconv"
	"strings"
)

// Constraint is a runonserver range: alternatives (||) of comparisons
// that must all hold (separated by spaces or commas), as CloudNativePG's
// semantic version ranges (">=11.0.0", ">=12.0.0 <=15.0.0"). pgsync
// reads the comparisons =, !=, >, >=, <, <= of versions of one to three
// numbers (a missing one is 0); the other forms of a semver range (~, ^,
// x wildcards, hyphen ranges) are refused, naming them.
type Constraint [][]comparison

type comparison struct {
	op string
	v  [3]int
}

// ParseConstraint parses a runonserver range.
func ParseConstraint(s string) (Constraint, error) {
	var out Constraint
	for _, alt := range strings.Split(s, "||") {
		var all []comparison
		for _, term := range strings.FieldsFunc(alt, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' }) {
			c, err := parseComparison(term)
			if err != nil {
				return nil, err
			}
			all = append(all, c)
		}
		if len(all) == 0 {
			return nil, fmt.Errorf("%q: an empty range", s)
		}
		out = append(out, all)
	}
	return out, nil
}

func parseComparison(term string) (comparison, error) {
	op := ""
	for _, o := range []string{">=", "<=", "!=", ">", "<", "="} {
		if strings.HasPrefix(term, o) {
			op = o
			break
		}
	}
	rest := strings.TrimPrefix(strings.TrimPrefix(term, op), "v")
	if op == "" {
		op = "="
	}
	if strings.ContainsAny(term, "~^xX*-") {
		return comparison{}, fmt.Errorf("%q: pgsync reads the comparisons =, !=, >, >=, <, <= of versions such as 15 or 12.4.0 (not ~, ^, wildcards or hyphen ranges)", term)
	}
	v, err := ParseVersion(rest)
	if err != nil {
		return comparison{}, fmt.Errorf("%q: %w", term, err)
	}
	return comparison{op: op, v: v}, nil
}

// ParseVersion reads MAJOR[.MINOR[.PATCH]].
func ParseVersion(s string) ([3]int, error) {
	var v [3]int
	parts := strings.Split(s, ".")
	if s == "" || len(parts) > 3 {
		return v, fmt.Errorf("%q is not a version of one to three numbers", s)
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return v, fmt.Errorf("%q is not a version of one to three numbers", s)
		}
		v[i] = n
	}
	return v, nil
}

// ServerVersion is server_version_num as a version: 150004 is 15.4.0,
// 90624 is 9.6.24.
func ServerVersion(num int) [3]int {
	if num >= 100000 {
		return [3]int{num / 10000, num % 10000, 0}
	}
	return [3]int{num / 10000, num / 100 % 100, num % 100}
}

// Matches says whether v is in the range (a nil range holds every one).
func (c Constraint) Matches(v [3]int) bool {
	if c == nil {
		return true
	}
	for _, all := range c {
		ok := true
		for _, cmp := range all {
			if !cmp.holds(v) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func (c comparison) holds(v [3]int) bool {
	d := 0
	for i := range v {
		if v[i] != c.v[i] {
			if v[i] < c.v[i] {
				d = -1
			} else {
				d = 1
			}
			break
		}
	}
	switch c.op {
	case ">=":
		return d >= 0
	case "<=":
		return d <= 0
	case ">":
		return d > 0
	case "<":
		return d < 0
	case "!=":
		return d != 0
	}
	return d == 0
}
