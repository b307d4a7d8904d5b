package cluster

import "testing"

func TestParseVersion(t *testing.T) {
	tests := []struct {
		image   string
		want    Version
		wantErr string
	}{
		{image: "quay.io/enterprisedb/postgresql:13.1", want: Version{13, 1, true}},
		{image: "quay.io/enterprisedb/postgresql:13.2", want: Version{13, 2, true}},
		{image: "localhost:5000/postgresql:15.18", want: Version{15, 18, true}},
		{image: "ghcr.io/cloudnative-pg/postgresql:16.4-30-bookworm", want: Version{16, 4, true}},
		{image: "postgres:17", want: Version{17, 0, true}},
		{image: "postgres:17-bullseye", want: Version{17, 0, true}},
		{image: "postgres:15.3@sha256:abc", want: Version{15, 3, true}},
		{image: "postgres@sha256:abc", want: Version{}},
		{image: "registry:5000/pg", wantErr: `image "registry:5000/pg" has neither a tag nor a digest`},
		{image: "postgres:latest", wantErr: `cannot read a PostgreSQL version from tag "latest"`},
		{image: "postgres:9.6", wantErr: "PostgreSQL 9 (tag \"9.6\") is not supported"},
		{image: "postgres:18.1", wantErr: "PostgreSQL 18 (tag \"18.1\") is not supported"},
		{image: "postgres@sha256", wantErr: `invalid digest "sha256"`},
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
