package cluster

import (
	"strconv"
	"strings"
)

// Diagnostic is one problem (or warning) found in a file.
type Diagnostic struct {
	Pos Position
	// Field is the path of the offending field ("spec.instances"); empty
	// for problems with the document itself (malformed YAML).
	Field   string
	Message string
}

// String renders FILE:LINE:COL: FIELD: message — the format `pgsync
// validate` prints, one per line.
func (d Diagnostic) String() string {
	var b strings.Builder
	b.WriteString(d.Pos.String())
	b.WriteString(": ")
	if d.Field != "" {
		b.WriteString(d.Field)
		b.WriteString(": ")
	}
	b.WriteString(d.Message)
	return b.String()
}

// Errors is a list of problems; it is the error Load returns.
type Errors []Diagnostic

func (e Errors) Error() string {
	lines := make([]string, len(e))
	for i, d := range e {
		lines[i] = d.String()
	}
	return strings.Join(lines, "\n")
}

func itoa(i int) string { return strconv.Itoa(i) }
