package kube

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/pgsync/pgsync/internal/cluster"
	pc "github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/internal/revision"
)

// TestPodUserCertificates: each Secret of spec.certificates is projected,
// not optional, into its directory of the certs volume (a CA's key only
// when the manager must issue from it), named in its variable; a cluster
// without them renders no volume, variable or revision line for them
// (invariant 8), and naming one changes the restart revision.
func TestPodUserCertificates(t *testing.T) {
	with := func(certs string) *cluster.Cluster {
		return loadCluster(t, func(y string) string { return y + "  certificates:\n" + certs })
	}
	for _, tc := range []struct {
		certs   string
		sources []string
		env     []string
	}{
		{certs: "    serverCASecret: sca\n    serverTLSSecret: stls\n",
			sources: []string{"sca: ca.crt→server-ca/ca.crt", "stls: tls.crt→server-tls/tls.crt tls.key→server-tls/tls.key"},
			env:     []string{pc.EnvServerCADir + "=/etc/pgsync/certs/server-ca", pc.EnvServerTLSDir + "=/etc/pgsync/certs/server-tls"}},
		{certs: "    serverCASecret: sca\n",
			sources: []string{"sca: ca.crt→server-ca/ca.crt ca.key→server-ca/ca.key"},
			env:     []string{pc.EnvServerCADir + "=/etc/pgsync/certs/server-ca"}},
		{certs: "    clientCASecret: cca\n",
			sources: []string{"cca: ca.crt→client-ca/ca.crt ca.key→client-ca/ca.key"},
			env:     []string{pc.EnvClientCADir + "=/etc/pgsync/certs/client-ca"}},
		// cert-manager's shape: one Secret as the certificate and its CA.
		{certs: "    clientCASecret: repl\n    replicationTLSSecret: repl\n",
			sources: []string{"repl: ca.crt→client-ca/ca.crt", "repl: tls.crt→replication-tls/tls.crt tls.key→replication-tls/tls.key"},
			env:     []string{pc.EnvClientCADir + "=/etc/pgsync/certs/client-ca", pc.EnvReplicationTLSDir + "=/etc/pgsync/certs/replication-tls"}},
	} {
		c := with(tc.certs)
		spec := render(t, c).StatefulSet.Spec.Template.Spec
		var sources []string
		for _, v := range spec.Volumes {
			if v.Name != volCerts {
				continue
			}
			if m := v.Projected.DefaultMode; m == nil || *m != 0o440 {
				t.Errorf("%q: mode %v, want 0440", tc.certs, m)
			}
			for _, p := range v.Projected.Sources {
				if p.Secret.Optional == nil || *p.Secret.Optional {
					t.Errorf("%q: %s is optional", tc.certs, p.Secret.Name)
				}
				line := p.Secret.Name + ":"
				for _, it := range p.Secret.Items {
					line += " " + it.Key + "→" + it.Path
				}
				sources = append(sources, line)
			}
		}
		if !reflect.DeepEqual(sources, tc.sources) {
			t.Errorf("%q: sources\n%q\nwant\n%q", tc.certs, sources, tc.sources)
		}
		ct := spec.Containers[0]
		var env []string
		for _, e := range ct.Env {
			if strings.HasPrefix(e.Value, pc.CertsDir) {
				env = append(env, e.Name+"="+e.Value)
			}
		}
		if !reflect.DeepEqual(env, tc.env) {
			t.Errorf("%q: env %q, want %q", tc.certs, env, tc.env)
		}
		mounted := false
		for _, m := range ct.VolumeMounts {
			mounted = mounted || (m.Name == volCerts && m.MountPath == pc.CertsDir && m.ReadOnly)
		}
		if !mounted {
			t.Errorf("%q: certs not mounted read-only at %s", tc.certs, pc.CertsDir)
		}
		if revision.Restart(c) == revision.Restart(loadCluster(t, nil)) {
			t.Errorf("%q: the restart revision does not change", tc.certs)
		}
	}
	plain := render(t, loadCluster(t, nil)).StatefulSet.Spec.Template.Spec
	for _, v := range plain.Volumes {
		if v.Name == volCerts {
			t.Error("a cluster without spec.certificates renders the certs volume")
		}
	}
	if s := fmt.Sprint(plain.Containers[0].Env); strings.Contains(s, pc.CertsDir) {
		t.Errorf("a cluster without spec.certificates has %s in its env", pc.CertsDir)
	}
	if got := UserCertificateSecrets(with("    serverCASecret: one\n    serverTLSSecret: one\n    clientCASecret: two\n")); !reflect.DeepEqual(got, []string{"one", "two"}) {
		t.Errorf("UserCertificateSecrets = %q", got)
	}
}
