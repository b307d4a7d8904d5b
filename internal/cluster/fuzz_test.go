package cluster

import (
	"os"
	"strings"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to the decoder. Its seed corpus (below and
// in testdata/fuzz/FuzzLoad) runs in every normal `go test`; `go test
// -fuzz=FuzzLoad ./internal/cluster` explores further.
func FuzzLoad(f *testing.F) {
	seed, err := os.ReadFile("testdata/seed-website.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(valid))
	f.Add([]byte(valid + "---\n" + valid))
	f.Add([]byte(valid + "  postgresql:\n    parameters: {work_mem: 8MB, shared_buffers: 1GB}\n    pg_hba: [host all all 0.0.0.0/0 scram-sha-256]\n"))
	f.Add([]byte(valid + "  affinity:\n    tolerations: [{key: a, operator: Exists}]\n  resources: {limits: {cpu: '2'}}\n"))
	f.Add([]byte("a: &x [1, *x]\n"))
	f.Add([]byte("kind: Cluster\napiVersion: postgresql.cnpg.io/v1\nspec: &s {instances: *s}\n"))
	f.Add([]byte("\xc2\xa0\xc2\xa0kind: Cluster\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := Load([]File{{Path: "f.yaml", Data: data}})
		if err != nil {
			errs, ok := err.(Errors)
			if !ok || len(errs) == 0 {
				t.Fatalf("error of type %T with no diagnostics: %v", err, err)
			}
			for _, d := range errs {
				if d.Pos.File != "f.yaml" || d.Pos.Line < 1 || d.Pos.Column < 1 {
					t.Fatalf("diagnostic without a position: %q", d.String())
				}
				if strings.TrimSpace(d.Message) == "" {
					t.Fatalf("diagnostic without a message at %s", d.Pos)
				}
			}
			return
		}
		for _, c := range set.Clusters {
			if _, probs := validate(c); len(probs) > 0 {
				t.Fatalf("loaded cluster fails validation: %v", probs)
			}
			if c.Spec.Instances < 1 || c.Spec.Storage.Size == "" || c.Metadata.Name == "" {
				t.Fatalf("loaded cluster breaks an invariant: %+v", c.Spec)
			}
		}
	})
}

// FuzzParseHBA: any line either parses into a rule whose type, method
// and (for TCP) address are set, or is refused with a message; nothing
// panics. An accepted line stays accepted after a trailing comment.
func FuzzParseHBA(f *testing.F) {
	for _, s := range []string{
		"host all all 10.0.0.0/8 scram-sha-256", `host "a,b" c,"d e" ::1/128 md5 # x`, "local all all peer",
		"host all all 1.2.3.4 255.0.0.0 ldap ldapserver=x ldapprefix=cn=", "host a, b, c 0.0.0.0/0 reject", `"`, ",", "#",
	} {
		f.Add(s, 15)
	}
	f.Fuzz(func(t *testing.T, line string, major int) {
		r, err := ParseHBA(line, major)
		if err != nil {
			if strings.TrimSpace(err.Error()) == "" {
				t.Fatalf("%q: empty error", line)
			}
			return
		}
		if r.Type == "" || r.Method == "" || len(r.Databases) == 0 || len(r.Users) == 0 || (r.Type != "local") == (r.Address == "") {
			t.Fatalf("%q: accepted as %+v", line, r)
		}
		if !strings.Contains(line, "#") && !strings.Contains(line, `"`) {
			if _, err := ParseHBA(line+" # comment", major); err != nil {
				t.Fatalf("%q accepted, with a trailing comment refused: %v", line, err)
			}
		}
	})
}
