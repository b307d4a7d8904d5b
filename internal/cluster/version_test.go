package cluster

import (
	"strings"
	"testing"
)

// hex64 is a well-formed sha256 hex part.
const hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestParseVersion(t *testing.T) {
	tests := []struct {
		image   string
		want    Version
		wantErr string
	}{
		{image: "quay.io/enterprisedb/postgresql:13.1", want: Version{Major: 13, Minor: 1, Known: true, MinorKnown: true}},
		{image: "quay.io/enterprisedb/postgresql:13.2", want: Version{Major: 13, Minor: 2, Known: true, MinorKnown: true}},
		{image: "localhost:5000/postgresql:15.18", want: Version{Major: 15, Minor: 18, Known: true, MinorKnown: true}},
		{image: "ghcr.io/cloudnative-pg/postgresql:16.4-30-bookworm", want: Version{Major: 16, Minor: 4, Known: true, MinorKnown: true}},
		{image: "postgres:17", want: Version{Major: 17, Known: true}},
		{image: "postgres:17-bullseye", want: Version{Major: 17, Known: true}},
		// CloudNativePG's tag forms (postgres-containers).
		{image: "ghcr.io/cloudnative-pg/postgresql:16", want: Version{Major: 16, Known: true}},
		{image: "ghcr.io/cloudnative-pg/postgresql:16.4", want: Version{Major: 16, Minor: 4, Known: true, MinorKnown: true}},
		{image: "ghcr.io/cloudnative-pg/postgresql:17.6-system-trixie", want: Version{Major: 17, Minor: 6, Known: true, MinorKnown: true}},
		{image: "ghcr.io/cloudnative-pg/postgresql:18.1-minimal-bookworm", want: Version{Major: 18, Minor: 1, Known: true, MinorKnown: true}},
		{image: "ghcr.io/cloudnative-pg/postgresql:16-standard-bookworm", want: Version{Major: 16, Known: true}},
		{image: "ghcr.io/cloudnative-pg/postgresql:17.2-202411251", want: Version{Major: 17, Minor: 2, Known: true, MinorKnown: true}},
		{image: "ghcr.io/cloudnative-pg/postgresql:17.9-202605110912-minimal-trixie", want: Version{Major: 17, Minor: 9, Known: true, MinorKnown: true}},
		{image: "ghcr.io/cloudnative-pg/postgresql:17.6-minimal-trixie@sha256:" + hex64, want: Version{Major: 17, Minor: 6, Known: true, MinorKnown: true}},
		{image: "ghcr.io/cloudnative-pg/postgresql:17beta2-3-bookworm", wantErr: `cannot read a PostgreSQL version from tag "17beta2-3-bookworm"`},
		{image: DefaultImageName, want: Version{Major: 17, Minor: 9, Known: true, MinorKnown: true}},
		{image: "postgres:15.3@sha256:" + hex64, want: Version{Major: 15, Minor: 3, Known: true, MinorKnown: true}},
		{image: "postgres@sha256:" + hex64, want: Version{}},
		{image: "postgres@sha512:" + hex64 + hex64, want: Version{}},
		{image: "registry.local:5000/pg:16.2@sha256:" + hex64, want: Version{Major: 16, Minor: 2, Known: true, MinorKnown: true}},
		{image: "registry:5000/pg", wantErr: `image "registry:5000/pg" has neither a tag nor a digest`},
		{image: "postgres:latest", wantErr: `cannot read a PostgreSQL version from tag "latest"`},
		{image: "postgres:9.6", wantErr: "PostgreSQL 9 (tag \"9.6\") is not supported"},
		// PostgreSQL 19 (parameter tables from 19rc1), in CloudNativePG's
		// tag forms; 20 is refused by name; a release candidate's own tag
		// is not a release.
		{image: "ghcr.io/cloudnative-pg/postgresql:19", want: Version{Major: 19, Known: true}},
		{image: "ghcr.io/cloudnative-pg/postgresql:19.0", want: Version{Major: 19, Minor: 0, Known: true, MinorKnown: true}},
		{image: "ghcr.io/cloudnative-pg/postgresql:19-minimal-trixie", want: Version{Major: 19, Known: true}},
		{image: "ghcr.io/cloudnative-pg/postgresql:19.1-202612010000-standard-trixie", want: Version{Major: 19, Minor: 1, Known: true, MinorKnown: true}},
		{image: "ghcr.io/cloudnative-pg/postgresql:19rc1-minimal-trixie", wantErr: `cannot read a PostgreSQL version from tag "19rc1-minimal-trixie"`},
		{image: "postgres:20.0", wantErr: "PostgreSQL 20 (tag \"20.0\") is not supported; supported major versions are 13 to 19"},
		{image: "postgres:20-minimal-trixie", wantErr: "PostgreSQL 20 (tag \"20-minimal-trixie\") is not supported; supported major versions are 13 to 19"},
		{image: "postgres:18.1", want: Version{Major: 18, Minor: 1, Known: true, MinorKnown: true}},
		{image: "postgres@sha256", wantErr: `invalid digest "sha256"`},
		{image: "postgres@sha256:", wantErr: `invalid digest "sha256:" (expected ALGORITHM:HEX`},
		{image: "postgres@:" + hex64, wantErr: `(expected ALGORITHM:HEX`},
		{image: "postgres@sha256:x", wantErr: `invalid digest "sha256:x": 'x' is not a lower-case hexadecimal digit (sha256 digests are 64 of 0-9a-f)`},
		{image: "postgres@sha256:abc", wantErr: `invalid digest "sha256:abc": sha256 digests have 64 hexadecimal digits, this one has 3`},
		{image: "postgres@sha256:" + hex64 + "0", wantErr: `sha256 digests have 64 hexadecimal digits, this one has 65`},
		{image: "postgres@sha256:" + hex64[:63], wantErr: `this one has 63`},
		{image: "postgres@sha256:" + strings.ToUpper(hex64), wantErr: `'A' is not a lower-case hexadecimal digit`},
		{image: "postgres@sha512:" + hex64, wantErr: `sha512 digests have 128 hexadecimal digits, this one has 64`},
		{image: "postgres@md5:" + hex64[:32], wantErr: `unsupported algorithm "md5" (sha256 or sha512)`},
		{image: "postgres@SHA256:" + hex64, wantErr: `unsupported algorithm "SHA256"`},
		{image: "postgres@sha256:" + hex64 + "@sha256:" + hex64, wantErr: `'@' is not a lower-case hexadecimal digit`},
		{image: "postgres@sha256:" + hex64[:60] + "é", wantErr: `'é' is not a lower-case hexadecimal digit`},
		{image: ":13", wantErr: `invalid image reference ":13"`},
	}
	for _, tt := range tests {
		t.Run(tt.image, func(t *testing.T) {
			got, err := ParseVersion(tt.image)
			if tt.wantErr != "" {
				if err == nil || !contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseVersion = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func contains(s, sub string) bool {
	return len(sub) == 0 || (len(s) >= len(sub) && (s[:len(sub)] == sub || contains(s[1:], sub)))
}
