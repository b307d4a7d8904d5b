package cluster

import (
	"fmt"
	"slices"
	"strings"
)

// Storage, probe and security-context checks (walStorage, pvcTemplate,
// probes, podSecurityContext, securityContext).

// MaxProbeSeconds bounds every probe duration and count: a day, far beyond
// any sensible setting, so that a typo (86400000) is caught.
const MaxProbeSeconds = 86400

// validateStorage checks spec.storage or spec.walStorage (prefix).
func validateStorage(prefix string, s *StorageConfiguration, bad func(field, format string, args ...any)) {
	t := s.PVCTemplate
	if s.Size == "" {
		bad(prefix+".size", "required: the size of each instance's volume (e.g. 10Gi)")
	} else if q, err := s.Size.Parse(); err == nil && q.Sign() <= 0 {
		bad(prefix+".size", "must be greater than zero (got %s)", s.Size)
	}
	if sc := s.StorageClass; sc != nil && !dns1123Subdomain(*sc) {
		bad(prefix+".storageClass", "%q is not a valid storage class name", *sc)
	}
	if t == nil {
		return
	}
	p := prefix + ".pvcTemplate"
	for i, m := range t.AccessModes {
		if !slices.Contains([]string{"ReadWriteOnce", "ReadWriteOncePod", "ReadWriteMany"}, m) {
			bad(fmt.Sprintf("%s.accessModes[%d]", p, i), "invalid access mode %q (allowed: ReadWriteOnce, ReadWriteOncePod, ReadWriteMany; each instance mounts its own volume, read-write)", m)
		}
	}
	if t.VolumeMode != "" && t.VolumeMode != "Filesystem" {
		bad(p+".volumeMode", "refused: %q; PostgreSQL's files need a file system (allowed: Filesystem)", t.VolumeMode)
	}
	if sc := t.StorageClassName; sc != nil && *sc != "" && !dns1123Subdomain(*sc) {
		bad(p+".storageClassName", "%q is not a valid storage class name", *sc)
	}
	if sc := t.VolumeAttributesClassName; sc != nil && !dns1123Subdomain(*sc) {
		bad(p+".volumeAttributesClassName", "%q is not a valid volume attributes class name", *sc)
	}
	for _, kind := range []struct {
		name string
		m    map[string]Quantity
	}{{"requests", t.Resources.Requests}, {"limits", t.Resources.Limits}} {
		for _, res := range sortedKeys(kind.m) {
			if res != "storage" {
				bad(p+".resources."+kind.name+"."+res, "unknown resource %q of a volume claim (allowed: storage)", res)
			}
		}
	}
	if sel := t.Selector; sel != nil {
		for i, e := range sel.MatchExpressions {
			f := fmt.Sprintf("%s.selector.matchExpressions[%d]", p, i)
			switch e.Operator {
			case "In", "NotIn":
				if len(e.Values) == 0 {
					bad(f+".values", "required with operator %s", e.Operator)
				}
			case "Exists", "DoesNotExist":
				if len(e.Values) > 0 {
					bad(f+".values", "must be empty with operator %s", e.Operator)
				}
			default:
				bad(f+".operator", "invalid value %q (allowed: In, NotIn, Exists, DoesNotExist)", e.Operator)
			}
			if e.Key == "" {
				bad(f+".key", "required")
			}
		}
	}
	if t.DataSource != nil {
		bad(p+".dataSource", "not supported by pgsync: every instance's volume starts empty (the primary runs initdb, a standby is cloned with pg_basebackup); a volume snapshot or cloned claim would be overwritten")
	}
	if t.DataSourceRef != nil {
		bad(p+".dataSourceRef", "not supported by pgsync: every instance's volume starts empty (the primary runs initdb, a standby is cloned with pg_basebackup); a populated volume would be overwritten")
	}
	if t.VolumeName != "" {
		bad(p+".volumeName", "not supported by pgsync: the template is every instance's claim, and one PersistentVolume can be bound to one claim only; pre-provision volumes with a selector instead")
	}
}

// fillFromTemplate merges a pvcTemplate as CloudNativePG does: size and
// storageClass win when set, else the template's storage request and
// storageClassName are the claims'.
func fillFromTemplate(s *StorageConfiguration) {
	t := s.PVCTemplate
	if t == nil {
		return
	}
	if s.Size == "" {
		s.Size = t.Resources.Requests["storage"]
	}
	if s.StorageClass == nil && t.StorageClassName != nil && *t.StorageClassName != "" {
		sc := *t.StorageClassName
		s.StorageClass = &sc
	}
}

func validateProbes(p *ProbesConfiguration, bad func(field, format string, args ...any)) {
	if p == nil {
		return
	}
	timing := func(field string, pr Probe, oneSuccess bool) {
		for _, f := range []struct {
			name string
			v    *int
			min  int
		}{
			{"initialDelaySeconds", pr.InitialDelaySeconds, 0},
			{"timeoutSeconds", pr.TimeoutSeconds, 1},
			{"periodSeconds", pr.PeriodSeconds, 1},
			{"successThreshold", pr.SuccessThreshold, 1},
			{"failureThreshold", pr.FailureThreshold, 1},
			{"terminationGracePeriodSeconds", pr.TerminationGracePeriodSeconds, 1},
		} {
			if f.v != nil && (*f.v < f.min || *f.v > MaxProbeSeconds) {
				bad(field+"."+f.name, "must be between %d and %d (got %d)", f.min, MaxProbeSeconds, *f.v)
			}
		}
		if oneSuccess && pr.SuccessThreshold != nil && *pr.SuccessThreshold != 1 {
			bad(field+".successThreshold", "must be 1 for a startup or liveness probe (Kubernetes' rule; got %d)", *pr.SuccessThreshold)
		}
	}
	strategy := func(field string, pr *ProbeWithStrategy) {
		if pr.Type != "" && pr.Type != "pg_isready" {
			bad(field+".type", "not supported by pgsync: %q; the probe asks the instance manager's %s, which is ready once postgres accepts connections (as pg_isready) — leave type unset or pg_isready", pr.Type, "/readyz")
		}
		if pr.MaximumLag != "" {
			bad(field+".maximumLag", "not supported by pgsync: the lag limit belongs to the streaming probe type, which pgsync does not have")
		}
	}
	if s := p.Startup; s != nil {
		timing("spec.probes.startup", s.Probe, true)
		strategy("spec.probes.startup", s)
	}
	if r := p.Readiness; r != nil {
		timing("spec.probes.readiness", r.Probe, false)
		strategy("spec.probes.readiness", r)
	}
	if l := p.Liveness; l != nil {
		timing("spec.probes.liveness", l.Probe, true)
		if l.IsolationCheck != nil {
			bad("spec.probes.liveness.isolationCheck", "not supported by pgsync: the primary is fenced by its Lease instead (it stops writing when it cannot renew it, docs/design.md)")
		}
	}
}

// safeSysctls are the sysctls PodSecurity baseline (and so restricted)
// allows.
var safeSysctls = []string{
	"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
	"net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
	"net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
	"net.ipv4.tcp_keepalive_probes",
}

// seLinuxTypes are the SELinux types PodSecurity baseline allows.
var seLinuxTypes = []string{"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}

// validateSecurity refuses anything weaker than PodSecurity restricted
// (and pgsync's read-only root file system).
func validateSecurity(s *Spec, bad func(field, format string, args ...any)) {
	ids := func(field string, v *int, min int) {
		if v != nil && *v < min {
			bad(field, "refused by PodSecurity restricted: must be at least %d (got %d)", min, *v)
		}
	}
	seccomp := func(field string, p *SeccompProfile) {
		if p == nil {
			return
		}
		switch p.Type {
		case "RuntimeDefault":
			if p.LocalhostProfile != "" {
				bad(field+".localhostProfile", "only allowed with type Localhost")
			}
		case "Localhost":
			if p.LocalhostProfile == "" {
				bad(field+".localhostProfile", "required with type Localhost")
			}
		case "Unconfined":
			bad(field+".type", "refused by PodSecurity restricted: seccomp profile Unconfined (allowed: RuntimeDefault, Localhost)")
		default:
			bad(field+".type", "invalid value %q (allowed: RuntimeDefault, Localhost)", p.Type)
		}
	}
	selinux := func(field string, o *SELinuxOptions) {
		if o == nil {
			return
		}
		if o.User != "" {
			bad(field+".user", "refused by PodSecurity restricted: a custom SELinux user")
		}
		if o.Role != "" {
			bad(field+".role", "refused by PodSecurity restricted: a custom SELinux role")
		}
		if !slices.Contains(seLinuxTypes, o.Type) {
			bad(field+".type", "refused by PodSecurity restricted: SELinux type %q (allowed: %s)", o.Type, strings.Join(seLinuxTypes[1:], ", "))
		}
	}
	if p := s.PodSecurityContext; p != nil {
		const f = "spec.podSecurityContext"
		if p.RunAsNonRoot != nil && !*p.RunAsNonRoot {
			bad(f+".runAsNonRoot", "refused by PodSecurity restricted: must be true")
		}
		ids(f+".runAsUser", p.RunAsUser, 1)
		ids(f+".runAsGroup", p.RunAsGroup, 0)
		ids(f+".fsGroup", p.FSGroup, 0)
		for i, g := range p.SupplementalGroups {
			if g < 0 {
				bad(fmt.Sprintf("%s.supplementalGroups[%d]", f, i), "must not be negative (got %d)", g)
			}
		}
		if p.FSGroupChangePolicy != "" && p.FSGroupChangePolicy != "OnRootMismatch" && p.FSGroupChangePolicy != "Always" {
			bad(f+".fsGroupChangePolicy", "invalid value %q (allowed: OnRootMismatch, Always)", p.FSGroupChangePolicy)
		}
		seccomp(f+".seccompProfile", p.SeccompProfile)
		selinux(f+".seLinuxOptions", p.SELinuxOptions)
		for i, sc := range p.Sysctls {
			if !slices.Contains(safeSysctls, sc.Name) {
				bad(fmt.Sprintf("%s.sysctls[%d].name", f, i), "refused by PodSecurity restricted: %q is not a safe sysctl (allowed: %s)", sc.Name, strings.Join(safeSysctls, ", "))
			}
		}
	}
	if c := s.SecurityContext; c != nil {
		const f = "spec.securityContext"
		if c.RunAsNonRoot != nil && !*c.RunAsNonRoot {
			bad(f+".runAsNonRoot", "refused by PodSecurity restricted: must be true")
		}
		ids(f+".runAsUser", c.RunAsUser, 1)
		ids(f+".runAsGroup", c.RunAsGroup, 0)
		if c.Privileged != nil && *c.Privileged {
			bad(f+".privileged", "refused by PodSecurity restricted: privileged containers")
		}
		if c.AllowPrivilegeEscalation != nil && *c.AllowPrivilegeEscalation {
			bad(f+".allowPrivilegeEscalation", "refused by PodSecurity restricted: must be false")
		}
		if c.ReadOnlyRootFilesystem != nil && !*c.ReadOnlyRootFilesystem {
			bad(f+".readOnlyRootFilesystem", "refused: pgsync runs postgres on a read-only root file system (it writes only to its volumes, /tmp and /run)")
		}
		if c.Capabilities != nil {
			for i, a := range c.Capabilities.Add {
				bad(fmt.Sprintf("%s.capabilities.add[%d]", f, i), "refused: adding capability %q; postgres needs none, and PodSecurity restricted allows only NET_BIND_SERVICE", a)
			}
			if c.Capabilities.Drop != nil && !slices.Contains(c.Capabilities.Drop, "ALL") {
				bad(f+".capabilities.drop", "refused by PodSecurity restricted: must include ALL")
			}
		}
		if c.ProcMount != "" && c.ProcMount != "Default" {
			bad(f+".procMount", "refused by PodSecurity restricted: procMount %q (allowed: Default)", c.ProcMount)
		}
		seccomp(f+".seccompProfile", c.SeccompProfile)
		selinux(f+".seLinuxOptions", c.SELinuxOptions)
	}
}
