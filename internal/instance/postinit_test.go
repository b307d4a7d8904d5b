package instance

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	pc "github.com/pgsync/pgsync/internal/podcontract"
)

func TestLineCol(t *testing.T) {
	text := "SELECT 1;\nSELECT  'é'::int;\n"
	for _, tt := range []struct {
		pos       int
		line, col int
		ok        bool
	}{
		{0, 0, 0, false}, {1, 1, 1, true}, {10, 1, 10, true}, {11, 2, 1, true},
		{19, 2, 9, true}, {20, 2, 10, true}, // in characters: é is one
		{len([]rune(text)) + 1, 3, 1, true}, {len([]rune(text)) + 2, 0, 0, false},
	} {
		line, col, ok := lineCol(text, tt.pos)
		if line != tt.line || col != tt.col || ok != tt.ok {
			t.Errorf("lineCol(%d) = %d, %d, %v; want %d, %d, %v", tt.pos, line, col, ok, tt.line, tt.col, tt.ok)
		}
	}
}

// TestSQLFileError: the file, database and statement always; the line
// and column when PostgreSQL gives a position; PostgreSQL's message only
// for a ConfigMap's file.
func TestSQLFileError(t *testing.T) {
	text := "SELECT 1;\nSELECT 'hunter2'::int;"
	quoting := &pgconn.PgError{Severity: "ERROR", Code: "22P02", Message: `invalid input syntax for type integer: "hunter2"`, Position: 18}
	noPos := &pgconn.PgError{Severity: "ERROR", Code: "23505", Message: `duplicate key value violates unique constraint "k"`, Detail: "Key (k)=(hunter2) already exists."}
	for _, tt := range []struct {
		name   string
		secret bool
		err    error
		want   string
	}{
		{"secret", true, quoting, "F in database app: statement 2, line 2, column 8: ERROR (SQLSTATE 22P02; PostgreSQL's message is left out, the file being a Secret's)"},
		{"secret without position", true, noPos, "F in database app: statement 2: ERROR (SQLSTATE 23505; PostgreSQL's message is left out, the file being a Secret's)"},
		{"configmap", false, quoting, `F in database app: statement 2, line 2, column 8: ERROR: invalid input syntax for type integer: "hunter2" (SQLSTATE 22P02)`},
		{"secret, not PostgreSQL's", true, errors.New("write: broken pipe SELECT 'hunter2'"), "F in database app: statement 2: failed (*errors.errorString)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := sqlFileError("F", "app", tt.secret, text, 1, tt.err).Error()
			if got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			if tt.secret && strings.Contains(got, "hunter2") {
				t.Errorf("a Secret's failure quotes it: %s", got)
			}
		})
	}
}

// TestMissingSQLFiles names the files not projected, in run order.
func TestMissingSQLFiles(t *testing.T) {
	dir := t.TempDir()
	o := pc.InitDB{SQLRefsDir: dir,
		PostInitSQLRefs: []pc.SQLFile{{Path: "postInitSQLRefs/0.sql", Secret: true, Name: "s", Key: "a.sql"}},
		PostInitApplicationSQLRefs: []pc.SQLFile{{Path: "postInitApplicationSQLRefs/0.sql", Name: "cm", Key: "b.sql"},
			{Path: "postInitApplicationSQLRefs/1.sql", Name: "cm", Key: "c.sql"}},
	}
	if err := os.MkdirAll(filepath.Join(dir, "postInitApplicationSQLRefs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "postInitApplicationSQLRefs/0.sql"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	got := missingSQLFiles(o)
	want := []string{"postInitSQLRefs: Secret s key a.sql", "postInitApplicationSQLRefs: ConfigMap cm key c.sql"}
	if !slices.Equal(got, want) {
		t.Errorf("missing %q, want %q", got, want)
	}
	if got := missingSQLFiles(pc.InitDB{}); got != nil {
		t.Errorf("without SQLRefs: missing %q", got)
	}
}
