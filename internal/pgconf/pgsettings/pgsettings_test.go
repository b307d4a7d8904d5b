package pgsettings

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseRows(t *testing.T) {
	out := []byte("work_mem\tuser\tinteger\nDateStyle\tuser\tstring\n\nblock_size\tinternal\tinteger\n")
	got, err := parseRows(out)
	if err != nil {
		t.Fatal(err)
	}
	want := []Row{
		{"DateStyle", "user", "string"},
		{"block_size", "internal", "integer"},
		{"work_mem", "user", "integer"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseRows (-want +got):\n%s", diff)
	}
	if _, err := parseRows([]byte("work_mem\tuser\n")); err == nil {
		t.Error("parseRows accepted a two-field line")
	}
}

func TestMajor(t *testing.T) {
	for num, want := range map[int]int{150018: 15, 130016: 13, 170004: 17} {
		if got := (Result{ServerVersionNum: num}).Major(); got != want {
			t.Errorf("Major(%d) = %d, want %d", num, got, want)
		}
	}
}
