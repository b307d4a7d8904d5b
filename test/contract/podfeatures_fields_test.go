package contract

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/kube"
	"github.com/pgsync/pgsync/internal/plan"
)

// The effects of walStorage, the pvcTemplates, spec.probes and the two
// security contexts: each entry names the rendered field it lands in
// (the claim templates, the postgres container's probes, the pod's and
// the container's securityContext; TestAPIStorageAndPodFeatures admits
// the result under PodSecurity restricted), and refusals lists the values
// validation refuses by name — a field that only takes the default, or
// only a value weaker than restricted, has no effect to check, so setting
// it otherwise must be refused at its path (TestRefusedFieldsAreRefused).
var refusals = map[string]func(s *cluster.Spec){}

func init() {
	claim := func(o *kube.Objects, name string) *corev1.PersistentVolumeClaimSpec {
		for i := range o.StatefulSet.Spec.VolumeClaimTemplates {
			if c := &o.StatefulSet.Spec.VolumeClaimTemplates[i]; c.Name == name {
				return &c.Spec
			}
		}
		return nil
	}
	wal := func(f func(w *cluster.StorageConfiguration)) func(s *cluster.Spec) {
		return func(s *cluster.Spec) {
			w := &cluster.StorageConfiguration{Size: "5Gi"}
			f(w)
			s.WALStorage = w
		}
	}
	storages := map[string]struct {
		claim string
		set   func(f func(t *cluster.PVCTemplate)) func(s *cluster.Spec)
	}{
		"spec.storage": {"pgdata", func(f func(t *cluster.PVCTemplate)) func(s *cluster.Spec) {
			return func(s *cluster.Spec) { t := &cluster.PVCTemplate{}; f(t); s.Storage.PVCTemplate = t }
		}},
		"spec.walStorage": {"pgwal", func(f func(t *cluster.PVCTemplate)) func(s *cluster.Spec) {
			return wal(func(w *cluster.StorageConfiguration) { t := &cluster.PVCTemplate{}; f(t); w.PVCTemplate = t })
		}},
	}
	add := func(path string, e effect) {
		if _, dup := effects[path]; dup {
			panic("two effects entries for " + path)
		}
		effects[path] = e
	}
	str := func(s string) *string { return &s }

	add("spec.walStorage.size", effect{where: "the pgwal volumeClaimTemplate's storage request (TestApplyWALStorage: pg_wal on it)",
		set: wal(func(w *cluster.StorageConfiguration) {}),
		render: func(o *kube.Objects) any {
			if c := claim(o, "pgwal"); c != nil {
				return c.Resources.Requests.Storage().String()
			}
			return nil
		}})
	add("spec.walStorage.storageClass", effect{where: "the pgwal volumeClaimTemplate's storageClassName",
		set: wal(func(w *cluster.StorageConfiguration) { w.StorageClass = str("fast") }),
		render: func(o *kube.Objects) any {
			if c := claim(o, "pgwal"); c != nil {
				return c.StorageClassName
			}
			return nil
		}})
	add("spec.walStorage.resizeInUseVolumes", effect{where: "the planner grows WAL claims offline, a restart each (TestWALOfflineResizeOfThePrimaryIsDowntime)",
		set: func(s *cluster.Spec) {
			s.WALStorage = &cluster.StorageConfiguration{Size: "5Gi", ResizeInUseVolumes: ptr(false)}
		},
		planned: walGrowth})

	for prefix, st := range storages {
		field := func(f func(c *corev1.PersistentVolumeClaimSpec) any) func(o *kube.Objects) any {
			return func(o *kube.Objects) any {
				if c := claim(o, st.claim); c != nil {
					return f(c)
				}
				return nil
			}
		}
		p := prefix + ".pvcTemplate."
		add(p+"accessModes", effect{where: "the claim template's accessModes",
			set:    st.set(func(t *cluster.PVCTemplate) { t.AccessModes = []string{"ReadWriteOncePod"} }),
			render: field(func(c *corev1.PersistentVolumeClaimSpec) any { return c.AccessModes })})
		add(p+"storageClassName", effect{where: "the claim template's storageClassName (when the storage's own storageClass is not written)",
			set:    st.set(func(t *cluster.PVCTemplate) { t.StorageClassName = str("gold") }),
			render: field(func(c *corev1.PersistentVolumeClaimSpec) any { return c.StorageClassName })})
		setRequests := st.set(func(t *cluster.PVCTemplate) {
			t.Resources.Requests = map[string]cluster.Quantity{"storage": "20Gi"}
		})
		isData := prefix == "spec.storage"
		add(p+"resources.requests", effect{where: "the claim template's requests (storage: when size is not written)",
			set: func(s *cluster.Spec) {
				setRequests(s)
				if isData {
					s.Storage.Size = ""
				} else {
					s.WALStorage.Size = ""
				}
			},
			render: field(func(c *corev1.PersistentVolumeClaimSpec) any { return c.Resources.Requests.Storage().String() })})
		add(p+"resources.limits", effect{where: "the claim template's limits",
			set: st.set(func(t *cluster.PVCTemplate) {
				t.Resources.Limits = map[string]cluster.Quantity{"storage": "40Gi"}
			}),
			render: field(func(c *corev1.PersistentVolumeClaimSpec) any { return c.Resources.Limits.Storage().String() })})
		add(p+"selector.matchLabels", effect{where: "the claim template's selector",
			set: st.set(func(t *cluster.PVCTemplate) {
				t.Selector = &cluster.LabelSelector{MatchLabels: map[string]string{"tier": "db"}}
			}),
			render: field(func(c *corev1.PersistentVolumeClaimSpec) any { return fmt.Sprint(c.Selector) })})
		for _, sub := range []string{"key", "operator", "values"} {
			add(p+"selector.matchExpressions[]."+sub, effect{where: "the claim template's selector",
				set: st.set(func(t *cluster.PVCTemplate) {
					t.Selector = &cluster.LabelSelector{MatchExpressions: []cluster.LabelSelectorRequirement{{Key: "tier", Operator: "In", Values: []string{"db"}}}}
				}),
				render: field(func(c *corev1.PersistentVolumeClaimSpec) any { return fmt.Sprint(c.Selector) })})
		}
		add(p+"volumeAttributesClassName", effect{where: "the claim template's volumeAttributesClassName",
			set:    st.set(func(t *cluster.PVCTemplate) { t.VolumeAttributesClassName = str("fast-iops") }),
			render: field(func(c *corev1.PersistentVolumeClaimSpec) any { return c.VolumeAttributesClassName })})
		// Only Filesystem (the default) is honoured.
		refusals[p+"volumeMode"] = st.set(func(t *cluster.PVCTemplate) { t.VolumeMode = "Block" })
		ref := func(f func(r *cluster.ObjectReference)) *cluster.ObjectReference {
			r := &cluster.ObjectReference{Kind: "VolumeSnapshot", Name: "snap"}
			f(r)
			return r
		}
		for _, src := range []string{"dataSource", "dataSourceRef"} {
			for sub, f := range map[string]func(r *cluster.ObjectReference){
				"apiGroup":  func(r *cluster.ObjectReference) { r.APIGroup = str("snapshot.storage.k8s.io") },
				"kind":      func(r *cluster.ObjectReference) {},
				"name":      func(r *cluster.ObjectReference) {},
				"namespace": func(r *cluster.ObjectReference) { r.Namespace = str("other") },
			} {
				refusals[p+src+"."+sub] = st.set(func(t *cluster.PVCTemplate) {
					if src == "dataSource" {
						t.DataSource = ref(f)
					} else {
						t.DataSourceRef = ref(f)
					}
				})
			}
		}
		refusals[p+"volumeName"] = st.set(func(t *cluster.PVCTemplate) { t.VolumeName = "pv-1" })
	}

	// Probe timings: each field lands in the same field of the container's
	// probe.
	probes := map[string]struct {
		set   func(s *cluster.Spec, p cluster.Probe)
		probe func(c corev1.Container) *corev1.Probe
	}{
		"startup": {func(s *cluster.Spec, p cluster.Probe) {
			s.Probes = &cluster.ProbesConfiguration{Startup: &cluster.ProbeWithStrategy{Probe: p}}
		}, func(c corev1.Container) *corev1.Probe { return c.StartupProbe }},
		"liveness": {func(s *cluster.Spec, p cluster.Probe) {
			s.Probes = &cluster.ProbesConfiguration{Liveness: &cluster.LivenessProbe{Probe: p}}
		}, func(c corev1.Container) *corev1.Probe { return c.LivenessProbe }},
		"readiness": {func(s *cluster.Spec, p cluster.Probe) {
			s.Probes = &cluster.ProbesConfiguration{Readiness: &cluster.ProbeWithStrategy{Probe: p}}
		}, func(c corev1.Container) *corev1.Probe { return c.ReadinessProbe }},
	}
	for name, pr := range probes {
		for field, value := range map[string]func(p *cluster.Probe){
			"initialDelaySeconds":           func(p *cluster.Probe) { p.InitialDelaySeconds = ptr(7) },
			"timeoutSeconds":                func(p *cluster.Probe) { p.TimeoutSeconds = ptr(9) },
			"periodSeconds":                 func(p *cluster.Probe) { p.PeriodSeconds = ptr(13) },
			"successThreshold":              func(p *cluster.Probe) { p.SuccessThreshold = ptr(3) },
			"failureThreshold":              func(p *cluster.Probe) { p.FailureThreshold = ptr(17) },
			"terminationGracePeriodSeconds": func(p *cluster.Probe) { p.TerminationGracePeriodSeconds = ptr(11) },
		} {
			if field == "successThreshold" && name != "readiness" {
				// Kubernetes allows only 1 for startup and liveness probes.
				refusals["spec.probes."+name+"."+field] = func(s *cluster.Spec) {
					var p cluster.Probe
					value(&p)
					pr.set(s, p)
				}
				continue
			}
			add("spec.probes."+name+"."+field, effect{where: "the postgres container's " + name + " probe",
				set: func(s *cluster.Spec) {
					var p cluster.Probe
					value(&p)
					pr.set(s, p)
				},
				render: func(o *kube.Objects) any { return fmt.Sprintf("%+v", *pr.probe(postgres(o))) }})
		}
	}
	refusals["spec.probes.startup.type"] = func(s *cluster.Spec) {
		s.Probes = &cluster.ProbesConfiguration{Startup: &cluster.ProbeWithStrategy{Type: "query"}}
	}
	refusals["spec.probes.readiness.type"] = func(s *cluster.Spec) {
		s.Probes = &cluster.ProbesConfiguration{Readiness: &cluster.ProbeWithStrategy{Type: "streaming"}}
	}
	refusals["spec.probes.startup.maximumLag"] = func(s *cluster.Spec) {
		s.Probes = &cluster.ProbesConfiguration{Startup: &cluster.ProbeWithStrategy{MaximumLag: "16Mi"}}
	}
	refusals["spec.probes.readiness.maximumLag"] = func(s *cluster.Spec) {
		s.Probes = &cluster.ProbesConfiguration{Readiness: &cluster.ProbeWithStrategy{MaximumLag: "16Mi"}}
	}
	for sub, f := range map[string]func(i *cluster.IsolationCheck){
		"enabled":           func(i *cluster.IsolationCheck) { i.Enabled = ptr(true) },
		"requestTimeout":    func(i *cluster.IsolationCheck) { i.RequestTimeout = ptr(1000) },
		"connectionTimeout": func(i *cluster.IsolationCheck) { i.ConnectionTimeout = ptr(1000) },
	} {
		refusals["spec.probes.liveness.isolationCheck."+sub] = func(s *cluster.Spec) {
			i := &cluster.IsolationCheck{}
			f(i)
			s.Probes = &cluster.ProbesConfiguration{Liveness: &cluster.LivenessProbe{IsolationCheck: i}}
		}
	}

	// The pod's securityContext.
	podSC := func(f func(p *cluster.PodSecurityContext)) func(s *cluster.Spec) {
		return func(s *cluster.Spec) { p := &cluster.PodSecurityContext{}; f(p); s.PodSecurityContext = p }
	}
	podField := func(f func(sc *corev1.PodSecurityContext) any) func(o *kube.Objects) any {
		return func(o *kube.Objects) any { return f(podSpec(o).SecurityContext) }
	}
	ps := "spec.podSecurityContext."
	add(ps+"runAsUser", effect{where: "the pod's securityContext runAsUser (the planner refuses changing it on a running cluster)",
		set: podSC(func(p *cluster.PodSecurityContext) { p.RunAsUser = ptr(1001) }), render: podField(func(sc *corev1.PodSecurityContext) any { return sc.RunAsUser })})
	add(ps+"runAsGroup", effect{where: "the pod's securityContext runAsGroup",
		set: podSC(func(p *cluster.PodSecurityContext) { p.RunAsGroup = ptr(1001) }), render: podField(func(sc *corev1.PodSecurityContext) any { return sc.RunAsGroup })})
	add(ps+"fsGroup", effect{where: "the pod's securityContext fsGroup",
		set: podSC(func(p *cluster.PodSecurityContext) { p.FSGroup = ptr(1001) }), render: podField(func(sc *corev1.PodSecurityContext) any { return sc.FSGroup })})
	add(ps+"fsGroupChangePolicy", effect{where: "the pod's securityContext fsGroupChangePolicy",
		set:    podSC(func(p *cluster.PodSecurityContext) { p.FSGroupChangePolicy = "Always" }),
		render: podField(func(sc *corev1.PodSecurityContext) any { return sc.FSGroupChangePolicy })})
	add(ps+"supplementalGroups", effect{where: "the pod's securityContext supplementalGroups",
		set:    podSC(func(p *cluster.PodSecurityContext) { p.SupplementalGroups = []int{2000} }),
		render: podField(func(sc *corev1.PodSecurityContext) any { return sc.SupplementalGroups })})
	add(ps+"seccompProfile.type", effect{where: "the pod's securityContext seccompProfile",
		set: podSC(func(p *cluster.PodSecurityContext) {
			p.SeccompProfile = &cluster.SeccompProfile{Type: "Localhost", LocalhostProfile: "pg.json"}
		}),
		render: podField(func(sc *corev1.PodSecurityContext) any { return fmt.Sprint(sc.SeccompProfile.Type) })})
	add(ps+"seccompProfile.localhostProfile", effect{where: "the pod's securityContext seccompProfile",
		set: podSC(func(p *cluster.PodSecurityContext) {
			p.SeccompProfile = &cluster.SeccompProfile{Type: "Localhost", LocalhostProfile: "pg.json"}
		}),
		render: podField(func(sc *corev1.PodSecurityContext) any { return sc.SeccompProfile.LocalhostProfile })})
	add(ps+"seLinuxOptions.type", effect{where: "the pod's securityContext seLinuxOptions",
		set:    podSC(func(p *cluster.PodSecurityContext) { p.SELinuxOptions = &cluster.SELinuxOptions{Type: "container_t"} }),
		render: podField(func(sc *corev1.PodSecurityContext) any { return fmt.Sprint(sc.SELinuxOptions) })})
	add(ps+"seLinuxOptions.level", effect{where: "the pod's securityContext seLinuxOptions",
		set:    podSC(func(p *cluster.PodSecurityContext) { p.SELinuxOptions = &cluster.SELinuxOptions{Level: "s0:c1,c2"} }),
		render: podField(func(sc *corev1.PodSecurityContext) any { return fmt.Sprint(sc.SELinuxOptions) })})
	for _, sub := range []string{"name", "value"} {
		add(ps+"sysctls[]."+sub, effect{where: "the pod's securityContext sysctls (safe ones only)",
			set: podSC(func(p *cluster.PodSecurityContext) {
				p.Sysctls = []cluster.Sysctl{{Name: "net.ipv4.ip_local_port_range", Value: "1024 65535"}}
			}),
			render: podField(func(sc *corev1.PodSecurityContext) any { return sc.Sysctls })})
	}
	refusals[ps+"runAsNonRoot"] = podSC(func(p *cluster.PodSecurityContext) { p.RunAsNonRoot = ptr(false) })
	refusals[ps+"seLinuxOptions.user"] = podSC(func(p *cluster.PodSecurityContext) { p.SELinuxOptions = &cluster.SELinuxOptions{User: "system_u"} })
	refusals[ps+"seLinuxOptions.role"] = podSC(func(p *cluster.PodSecurityContext) { p.SELinuxOptions = &cluster.SELinuxOptions{Role: "system_r"} })

	// The postgres container's securityContext.
	ctSC := func(f func(c *cluster.SecurityContext)) func(s *cluster.Spec) {
		return func(s *cluster.Spec) { c := &cluster.SecurityContext{}; f(c); s.SecurityContext = c }
	}
	ctField := func(f func(sc *corev1.SecurityContext) any) func(o *kube.Objects) any {
		return func(o *kube.Objects) any { return f(postgres(o).SecurityContext) }
	}
	cs := "spec.securityContext."
	add(cs+"runAsUser", effect{where: "the postgres container's securityContext runAsUser",
		set: ctSC(func(c *cluster.SecurityContext) { c.RunAsUser = ptr(1001) }), render: ctField(func(sc *corev1.SecurityContext) any { return sc.RunAsUser })})
	add(cs+"runAsGroup", effect{where: "the postgres container's securityContext runAsGroup",
		set: ctSC(func(c *cluster.SecurityContext) { c.RunAsGroup = ptr(1001) }), render: ctField(func(sc *corev1.SecurityContext) any { return sc.RunAsGroup })})
	add(cs+"seccompProfile.type", effect{where: "the postgres container's securityContext seccompProfile",
		set: ctSC(func(c *cluster.SecurityContext) {
			c.SeccompProfile = &cluster.SeccompProfile{Type: "Localhost", LocalhostProfile: "pg.json"}
		}),
		render: ctField(func(sc *corev1.SecurityContext) any {
			if sc.SeccompProfile == nil {
				return nil
			}
			return fmt.Sprint(sc.SeccompProfile.Type)
		})})
	add(cs+"seccompProfile.localhostProfile", effect{where: "the postgres container's securityContext seccompProfile",
		set: ctSC(func(c *cluster.SecurityContext) {
			c.SeccompProfile = &cluster.SeccompProfile{Type: "Localhost", LocalhostProfile: "pg.json"}
		}),
		render: ctField(func(sc *corev1.SecurityContext) any {
			if sc.SeccompProfile == nil {
				return nil
			}
			return sc.SeccompProfile.LocalhostProfile
		})})
	add(cs+"seLinuxOptions.type", effect{where: "the postgres container's securityContext seLinuxOptions",
		set:    ctSC(func(c *cluster.SecurityContext) { c.SELinuxOptions = &cluster.SELinuxOptions{Type: "container_t"} }),
		render: ctField(func(sc *corev1.SecurityContext) any { return fmt.Sprint(sc.SELinuxOptions) })})
	add(cs+"seLinuxOptions.level", effect{where: "the postgres container's securityContext seLinuxOptions",
		set:    ctSC(func(c *cluster.SecurityContext) { c.SELinuxOptions = &cluster.SELinuxOptions{Level: "s0:c1,c2"} }),
		render: ctField(func(sc *corev1.SecurityContext) any { return fmt.Sprint(sc.SELinuxOptions) })})
	// What restricted fixes: only its own value is accepted, and that is
	// what pgsync renders anyway.
	refusals[cs+"runAsNonRoot"] = ctSC(func(c *cluster.SecurityContext) { c.RunAsNonRoot = ptr(false) })
	refusals[cs+"privileged"] = ctSC(func(c *cluster.SecurityContext) { c.Privileged = ptr(true) })
	refusals[cs+"allowPrivilegeEscalation"] = ctSC(func(c *cluster.SecurityContext) { c.AllowPrivilegeEscalation = ptr(true) })
	refusals[cs+"readOnlyRootFilesystem"] = ctSC(func(c *cluster.SecurityContext) { c.ReadOnlyRootFilesystem = ptr(false) })
	refusals[cs+"capabilities.add"] = ctSC(func(c *cluster.SecurityContext) { c.Capabilities = &cluster.Capabilities{Add: []string{"NET_ADMIN"}} })
	refusals[cs+"capabilities.drop"] = ctSC(func(c *cluster.SecurityContext) { c.Capabilities = &cluster.Capabilities{Drop: []string{"NET_RAW"}} })
	refusals[cs+"seLinuxOptions.user"] = ctSC(func(c *cluster.SecurityContext) { c.SELinuxOptions = &cluster.SELinuxOptions{User: "system_u"} })
	refusals[cs+"seLinuxOptions.role"] = ctSC(func(c *cluster.SecurityContext) { c.SELinuxOptions = &cluster.SELinuxOptions{Role: "system_r"} })
	refusals[cs+"procMount"] = ctSC(func(c *cluster.SecurityContext) { c.ProcMount = "Unmasked" })
}

// walGrowth is what the planner does when c's WAL volumes (5Gi, with c's
// resizeInUseVolumes) grow to 10Gi.
func walGrowth(c *cluster.Cluster) any {
	withWAL := withSpec(nil, c, func(s *cluster.Spec) {
		w := &cluster.StorageConfiguration{Size: "5Gi"}
		if s.WALStorage != nil {
			w.ResizeInUseVolumes = s.WALStorage.ResizeInUseVolumes
		}
		s.WALStorage = w
	})
	bigger := withSpec(nil, withWAL, func(s *cluster.Spec) { s.WALStorage.Size = "10Gi" })
	return steps(bigger, plan.Converged([]*cluster.Cluster{withWAL}))
}

// TestRefusedFieldsAreRefused: every field refusals lists is refused by
// validation at its own path when set as its entry sets it.
func TestRefusedFieldsAreRefused(t *testing.T) {
	base := load(t, []byte(baseSpec))
	for _, p := range sortedKeys(refusals) {
		t.Run(p, func(t *testing.T) {
			if _, both := effects[p]; both {
				t.Fatal("in both effects and refusals")
			}
			raw, err := json.Marshal(base.Spec)
			if err != nil {
				t.Fatal(err)
			}
			var s cluster.Spec
			if err := json.Unmarshal(raw, &s); err != nil {
				t.Fatal(err)
			}
			refusals[p](&s)
			doc, _ := json.Marshal(map[string]any{"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster",
				"metadata": map[string]string{"name": "fx", "namespace": "shop"}, "spec": s})
			_, err = cluster.Load([]cluster.File{{Path: "refused.json", Data: doc}})
			// The refusal names the field or the struct it is in (a
			// dataSource, an isolationCheck is refused whole).
			named := false
			for f := strings.ReplaceAll(p, "[]", "[0]"); err != nil && f != "spec"; f = f[:strings.LastIndex(f, ".")] {
				if strings.Contains(err.Error(), " "+f+": ") || strings.Contains(err.Error(), " "+f+"[") {
					named = true
					break
				}
			}
			if !named {
				t.Errorf("setting %s: %v, want a refusal naming it", p, err)
			}
		})
	}
}
