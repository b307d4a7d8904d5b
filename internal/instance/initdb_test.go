package instance

import (
	"slices"
	"testing"

	pc "github.com/pgsync/pgsync/internal/podcontract"
)

func TestInitdbArgs(t *testing.T) {
	base := []string{"-D", "/d", "-U", "postgres", "--pwfile=/pw", "--auth-local=peer", "--auth-host=scram-sha-256"}
	for _, tt := range []struct {
		name   string
		walDir string
		o      pc.InitDB
		want   []string
	}{
		{"defaults", "", pc.InitDB{}, []string{"--data-checksums", "-E", "UTF8", "--locale=C"}},
		{"wal dir", "/w", pc.InitDB{}, []string{"--data-checksums", "-E", "UTF8", "--locale=C", "--waldir=/w"}},
		{"checksums off before 18", "", pc.InitDB{NoDataChecksums: true, Major: 17}, []string{"-E", "UTF8", "--locale=C"}},
		{"checksums off on 18", "", pc.InitDB{NoDataChecksums: true, Major: 18}, []string{"--no-data-checksums", "-E", "UTF8", "--locale=C"}},
		{"collate and ctype replace locale C", "", pc.InitDB{Encoding: "LATIN1", LocaleCollate: "de_DE", LocaleCType: "C"},
			[]string{"--data-checksums", "-E", "LATIN1", "--lc-collate=de_DE", "--lc-ctype=C"}},
		{"icu", "", pc.InitDB{Locale: "en_US.UTF-8", LocaleProvider: "icu", ICULocale: "en-US", ICURules: "&a < b"},
			[]string{"--data-checksums", "-E", "UTF8", "--locale=en_US.UTF-8", "--locale-provider=icu", "--icu-locale=en-US", "--icu-rules=&a < b"}},
		{"builtin, wal segments", "", pc.InitDB{LocaleProvider: "builtin", BuiltinLocale: "C.UTF-8", WALSegmentSize: 64},
			[]string{"--data-checksums", "-E", "UTF8", "--locale=C", "--locale-provider=builtin", "--builtin-locale=C.UTF-8", "--wal-segsize=64"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := initdbArgs("/d", tt.walDir, "/pw", tt.o)
			if want := append(slices.Clone(base), tt.want...); !slices.Equal(got, want) {
				t.Errorf("initdbArgs\n got %q\nwant %q", got, want)
			}
		})
	}
	// No password (superuser access off): none is set, and no method
	// needs one.
	got := initdbArgs("/d", "", "", pc.InitDB{})
	if want := []string{"-D", "/d", "-U", "postgres", "--auth-local=peer", "--auth-host=reject", "--data-checksums", "-E", "UTF8", "--locale=C"}; !slices.Equal(got, want) {
		t.Errorf("initdbArgs without a password\n got %q\nwant %q", got, want)
	}
}
