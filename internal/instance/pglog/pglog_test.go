package pglog

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want Line
	}{
		{"2026-11-26 00:40:01.123 UTC [1234] LOG:  database system is ready to accept connections",
			Line{"2026-11-26 00:40:01.123 UTC", 1234, "LOG", "database system is ready to accept connections"}},
		{"2026-11-26 00:40:01.123 UTC [77] ERROR:  relation \"x\" does not exist at character 15",
			Line{"2026-11-26 00:40:01.123 UTC", 77, "ERROR", "relation \"x\" does not exist at character 15"}},
		{"2026-11-26 00:40:01.123 UTC [77] STATEMENT:  select 1: 2",
			Line{"2026-11-26 00:40:01.123 UTC", 77, "STATEMENT", "select 1: 2"}},
		{"The files belonging to this database system will be owned by user \"postgres\".",
			Line{Message: "The files belonging to this database system will be owned by user \"postgres\"."}},
		{"pg_basebackup: [x] nope", Line{Message: "pg_basebackup: [x] nope"}},
		{"", Line{}},
	}
	for _, tc := range tests {
		if got := Parse(tc.in); got != tc.want {
			t.Errorf("Parse(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestRelayWritesJSONLines(t *testing.T) {
	var out bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&out, nil))
	Relay(log, "postgres", strings.NewReader(
		"2026-11-26 00:40:01.123 UTC [9] FATAL:  the database system is starting up\nplain\n"))
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 JSON lines, got %q", out.String())
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatal(err)
	}
	if rec["level"] != "ERROR" || rec["severity"] != "FATAL" || rec["logger"] != "postgres" || rec["pid"] != float64(9) ||
		rec["msg"] != "the database system is starting up" {
		t.Errorf("record = %v", rec)
	}
	if err := json.Unmarshal([]byte(lines[1]), &rec); err != nil || rec["msg"] != "plain" {
		t.Errorf("second record = %v (%v)", rec, err)
	}
}
