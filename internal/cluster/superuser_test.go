package cluster

import (
	"slices"
	"testing"
)

// TestSuperuser: enableSuperuserAccess either way and superuserSecret
// validate, access off by default (CloudNativePG's); a superuserSecret
// that is no Secret name, or one of the cluster's other credentials, is
// refused at its value.
func TestSuperuser(t *testing.T) {
	head := "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata:\n  name: pg\n  namespace: x\nspec:\n  imageName: ghcr.io/cloudnative-pg/postgresql:16.4\n  instances: 3\n  storage:\n    size: 1Gi\n"
	for _, tc := range []struct {
		body       string
		access     bool
		secret     string
		wantErrors []string
	}{
		{body: ""},
		{body: "  enableSuperuserAccess: true\n", access: true},
		{body: "  enableSuperuserAccess: false\n"},
		{body: "  enableSuperuserAccess: true\n  superuserSecret:\n    name: my-su\n", access: true, secret: "my-su"},
		// Ignored while access is off, as CloudNativePG does.
		{body: "  superuserSecret:\n    name: my-su\n", secret: "my-su"},
		{body: "  superuserSecret:\n    name: My_Su\n", wantErrors: []string{`c.yaml:12:11: spec.superuserSecret.name: "My_Su" is not a valid Secret name`}},
		{body: "  superuserSecret:\n    name: pg-app\n", wantErrors: []string{`c.yaml:12:11: spec.superuserSecret.name: "pg-app" holds another credential of the cluster; name a basic-auth Secret of your own with the superuser's password`}},
		{body: "  superuserSecret:\n    name: pg-ca\n", wantErrors: []string{`c.yaml:12:11: spec.superuserSecret.name: "pg-ca" holds another credential of the cluster; name a basic-auth Secret of your own with the superuser's password`}},
		{body: "  superuserSecret:\n    name: own-app\n  bootstrap:\n    initdb:\n      secret:\n        name: own-app\n", wantErrors: []string{`c.yaml:12:11: spec.superuserSecret.name: "own-app" holds another credential of the cluster; name a basic-auth Secret of your own with the superuser's password`}},
	} {
		cs, errs := load(t, File{Path: "c.yaml", Data: []byte(head + tc.body)})
		var got []string
		for _, e := range errs {
			got = append(got, e.String())
		}
		if !slices.Equal(got, tc.wantErrors) {
			t.Errorf("%q: errors %q, want %q", tc.body, got, tc.wantErrors)
			continue
		}
		if len(tc.wantErrors) > 0 {
			continue
		}
		if len(cs.Clusters) != 1 {
			t.Fatalf("%q: %d clusters", tc.body, len(cs.Clusters))
		}
		if a, s := cs.Clusters[0].Spec.SuperuserAccess(), cs.Clusters[0].Spec.SuperuserSecretName(); a != tc.access || s != tc.secret {
			t.Errorf("%q: access %v, secret %q; want %v, %q", tc.body, a, s, tc.access, tc.secret)
		}
	}
}

// TestSuperuserCorpus: CloudNativePG's own files load with the access
// and Secret they write.
func TestSuperuserCorpus(t *testing.T) {
	want := map[string]struct {
		access bool
		secret string
	}{
		"testdata/cnpg/superuser-secret.yaml": {true, "cluster-example-superuser"},
		"testdata/cnpg/superuser-off.yaml":    {false, ""},
	}
	for p, c := range loadEach(t, "testdata/cnpg/superuser-*.yaml", len(want)) {
		w := want[p]
		if a, s := c.Spec.SuperuserAccess(), c.Spec.SuperuserSecretName(); a != w.access || s != w.secret {
			t.Errorf("%s: access %v, secret %q; want %v, %q", p, a, s, w.access, w.secret)
		}
	}
}
