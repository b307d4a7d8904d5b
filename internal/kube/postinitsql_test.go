package kube

import (
	"encoding/json"
	"testing"

	corev1 "k8s.io/api/core/v1"

	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// TestRenderPostInitSQLRefs: each SQLRefs key is projected, optional, into
// the postgres container's post-init-sql volume, and PGSYNC_INITDB lists
// the files per phase in the order they run (the Secrets' first, then the
// ConfigMaps'); a cluster without SQLRefs gets no volume.
func TestRenderPostInitSQLRefs(t *testing.T) {
	c := loadCluster(t, func(y string) string {
		return y + `  bootstrap:
    initdb:
      postInitSQL: ["CREATE ROLE reporting NOLOGIN"]
      postInitSQLRefs:
        configMapRefs: [{name: schema, key: roles.sql}]
      postInitApplicationSQLRefs:
        configMapRefs: [{name: schema, key: tables.sql}, {name: schema, key: grants.sql}]
        secretRefs: [{name: app-sql, key: passwords.sql}]
`
	})
	pod := render(t, c).StatefulSet.Spec.Template.Spec
	var got pc.InitDB
	for _, e := range pod.Containers[0].Env {
		if e.Name == pc.EnvInitDB {
			if err := json.Unmarshal([]byte(e.Value), &got); err != nil {
				t.Fatal(err)
			}
		}
	}
	same(t, got.PostInitSQLRefs, []pc.SQLFile{{Path: "postInitSQLRefs/0.sql", Name: "schema", Key: "roles.sql"}})
	same(t, got.PostInitTemplateSQLRefs, []pc.SQLFile(nil))
	same(t, got.PostInitApplicationSQLRefs, []pc.SQLFile{
		{Path: "postInitApplicationSQLRefs/0.sql", Secret: true, Name: "app-sql", Key: "passwords.sql"},
		{Path: "postInitApplicationSQLRefs/1.sql", Name: "schema", Key: "tables.sql"},
		{Path: "postInitApplicationSQLRefs/2.sql", Name: "schema", Key: "grants.sql"},
	})
	yes := ptr(true)
	var vol *corev1.Volume
	for i := range pod.Volumes {
		if pod.Volumes[i].Name == pc.PostInitSQLVolume {
			vol = &pod.Volumes[i]
		}
	}
	if vol == nil || vol.Projected == nil {
		t.Fatalf("no projected volume %s: %+v", pc.PostInitSQLVolume, pod.Volumes)
	}
	same(t, *vol.Projected.DefaultMode, int32(0o440))
	same(t, vol.Projected.Sources, []corev1.VolumeProjection{
		{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "schema"},
			Items: []corev1.KeyToPath{{Key: "roles.sql", Path: "postInitSQLRefs/0.sql"}}, Optional: yes}},
		{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "app-sql"},
			Items: []corev1.KeyToPath{{Key: "passwords.sql", Path: "postInitApplicationSQLRefs/0.sql"}}, Optional: yes}},
		{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "schema"},
			Items: []corev1.KeyToPath{{Key: "tables.sql", Path: "postInitApplicationSQLRefs/1.sql"}}, Optional: yes}},
		{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "schema"},
			Items: []corev1.KeyToPath{{Key: "grants.sql", Path: "postInitApplicationSQLRefs/2.sql"}}, Optional: yes}},
	})
	mounts := map[string][]string{}
	for _, ct := range append(pod.InitContainers, pod.Containers...) {
		for _, m := range ct.VolumeMounts {
			if m.Name == pc.PostInitSQLVolume {
				mounts[ct.Name] = append(mounts[ct.Name], m.MountPath)
				if !m.ReadOnly {
					t.Errorf("%s mounts %s writable", ct.Name, m.Name)
				}
			}
		}
	}
	same(t, mounts, map[string][]string{pc.ContainerPostgres: {pc.PostInitSQLDir}})

	// Without SQLRefs (inline post-init SQL only): no volume, so the pod
	// template of existing clusters is unchanged.
	plain := render(t, loadCluster(t, func(y string) string {
		return y + "  bootstrap:\n    initdb:\n      postInitSQL: [\"CREATE ROLE reporting NOLOGIN\"]\n"
	})).StatefulSet.Spec.Template.Spec
	for _, v := range plain.Volumes {
		if v.Name == pc.PostInitSQLVolume {
			t.Errorf("a cluster without SQLRefs has volume %s", v.Name)
		}
	}
}
