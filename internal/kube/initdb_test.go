package kube

import (
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	pc "github.com/pgsync/pgsync/internal/podcontract"
)

const initdbYAML = `  bootstrap:
    initdb:
      database: shop
      owner: alice
      secret:
        name: shop-owner
      encoding: LATIN1
      localeCollate: C
      localeCType: C
      dataChecksums: false
      walSegmentSize: 32
      postInitSQL: ["CREATE ROLE reporting NOLOGIN"]
      postInitTemplateSQL: ["CREATE EXTENSION IF NOT EXISTS pgcrypto"]
      postInitApplicationSQL: ["CREATE TABLE orders (id int)"]
`

// TestRenderInitDB: spec.bootstrap.initdb reaches the pod as the database,
// owner and options variables; the user's Secret is projected (never
// copied) and pgsync generates no NAME-app then.
func TestRenderInitDB(t *testing.T) {
	withInitDB := func(y string) string { return y + initdbYAML }
	c := loadCluster(t, withInitDB)
	pod := render(t, c).StatefulSet.Spec.Template.Spec
	env := map[string]string{}
	for _, e := range pod.Containers[0].Env {
		env[e.Name] = e.Value
	}
	same(t, env[pc.EnvAppUser], "alice")
	same(t, env[pc.EnvAppDatabase], "shop")
	var got pc.InitDB
	if err := json.Unmarshal([]byte(env[pc.EnvInitDB]), &got); err != nil {
		t.Fatalf("%s: %v", pc.EnvInitDB, err)
	}
	same(t, got, pc.InitDB{Encoding: "LATIN1", LocaleCollate: "C", LocaleCType: "C", NoDataChecksums: true,
		WALSegmentSize: 32, Major: 15,
		PostInitSQL:            []string{"CREATE ROLE reporting NOLOGIN"},
		PostInitTemplateSQL:    []string{"CREATE EXTENSION IF NOT EXISTS pgcrypto"},
		PostInitApplicationSQL: []string{"CREATE TABLE orders (id int)"}})
	var projected []string
	for _, v := range pod.Volumes {
		if v.Projected == nil {
			continue
		}
		for _, s := range v.Projected.Sources {
			if s.Secret != nil {
				projected = append(projected, s.Secret.Name+"/"+s.Secret.Items[0].Key)
			}
		}
	}
	if !strings.Contains(strings.Join(projected, ","), "shop-owner/password") || strings.Contains(strings.Join(projected, ","), "web-app/") {
		t.Errorf("projected secrets %v: want shop-owner/password and no web-app", projected)
	}
	secrets, err := NewSecrets(c, func(string) bool { return false }, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets {
		if s.Name == "web-app" || s.Name == "shop-owner" {
			t.Errorf("generated %s: the owner's password is the user's Secret", s.Name)
		}
	}
	same(t, SecretNames(c), []string(nil))

	// Without initdb: no variable (the pod template of existing clusters
	// is unchanged), app/app and a generated NAME-app.
	plain := loadCluster(t, nil)
	for _, e := range render(t, plain).StatefulSet.Spec.Template.Spec.Containers[0].Env {
		if e.Name == pc.EnvInitDB {
			t.Errorf("%s rendered without spec.bootstrap.initdb", pc.EnvInitDB)
		}
	}
	// A generated NAME-app names the database and owner of initdb.
	gen := loadCluster(t, withInitDB)
	gen.Spec.Bootstrap.InitDB.Secret = nil
	secrets, err = NewSecrets(gen, func(string) bool { return false }, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var app *corev1.Secret
	for _, s := range secrets {
		if s.Name == "web-app" {
			app = s
		}
	}
	if app == nil {
		t.Fatal("no web-app generated without initdb.secret")
	}
	same(t, string(app.Data["username"]), "alice")
	same(t, string(app.Data["dbname"]), "shop")
}
