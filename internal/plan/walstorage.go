package plan

import (
	"fmt"
	"reflect"

	"github.com/pgsync/pgsync/internal/cluster"
)

// walRefusals are the spec.walStorage changes pgsync will not make on a
// running cluster. Adding or removing the WAL volume would move pg_wal of
// every existing instance (a restart with a copy, or data loss when the
// link points at a volume that went away), and a StatefulSet's pods all
// share one set of volume claim templates: an instance created after the
// change would differ from the others. So both are refused; the size
// grows like storage's, and the class and template stay.
func walRefusals(d *cluster.Cluster, o *ObservedCluster) []cluster.Diagnostic {
	var out []cluster.Diagnostic
	refuse := func(field, format string, args ...any) {
		out = append(out, cluster.Diagnostic{Pos: d.Pos(field), Field: field, Message: fmt.Sprintf(format, args...)})
	}
	before, after := o.Spec.Spec.WALStorage, d.Spec.WALStorage
	switch {
	case before == nil && after == nil:
		return nil
	case before == nil:
		refuse("spec.walStorage", "refused: a WAL volume cannot be added to a running cluster: the existing instances keep pg_wal in their data volume, and pgsync does not move it; create a new cluster with walStorage and migrate to it")
		return out
	case after == nil:
		refuse("spec.walStorage", "refused: the WAL volume cannot be removed from a running cluster: pg_wal of every instance lives on it (as in CloudNativePG); put walStorage back")
		return out
	}
	size := before.Size
	for _, in := range o.Instances {
		if in.WALVolumeSize != "" && in.WALVolumeSize.Cmp(size) > 0 {
			size = in.WALVolumeSize
		}
	}
	if after.Size.Cmp(size) < 0 {
		refuse("spec.walStorage.size", "refused: WAL storage cannot shrink (%s → %s); volumes can only grow", size, after.Size)
	}
	if b, a := deref(before.StorageClass), deref(after.StorageClass); b != a {
		refuse("spec.walStorage.storageClass", "refused: the storage class of existing WAL volumes cannot change (%s → %s)", orUnset(b), orUnset(a))
	}
	return append(out, templateRefusals(d, "spec.walStorage", before, after)...)
}

// templateRefusals refuses a pvcTemplate change other than the storage
// request (a resize): the rest of a claim's spec is immutable once the
// claim exists, so only instances created later would get it.
func templateRefusals(d *cluster.Cluster, field string, before, after *cluster.StorageConfiguration) []cluster.Diagnostic {
	strip := func(t *cluster.PVCTemplate) cluster.PVCTemplate {
		if t == nil {
			return cluster.PVCTemplate{}
		}
		c := *t
		c.Resources.Requests = nil
		if len(c.Resources.Limits) == 0 {
			c.Resources.Limits = nil
		}
		if len(c.AccessModes) == 0 {
			c.AccessModes = nil
		}
		return c
	}
	if reflect.DeepEqual(strip(before.PVCTemplate), strip(after.PVCTemplate)) {
		return nil
	}
	f := field + ".pvcTemplate"
	return []cluster.Diagnostic{{Pos: d.Pos(f), Field: f,
		Message: "refused: a PersistentVolumeClaim's spec cannot change once it exists (only its storage request grows); the existing instances' claims would differ from new ones"}}
}

// walGrows says whether spec.walStorage.size grows (the StatefulSet is
// re-created for its immutable claim templates).
func walGrows(d *cluster.Cluster, o *ObservedCluster) bool {
	return d.Spec.WALStorage != nil && o.Spec.Spec.WALStorage != nil &&
		d.Spec.WALStorage.Size.Cmp(o.Spec.Spec.WALStorage.Size) > 0
}

// walResizeSteps grow each kept instance's WAL claim, as the data claims.
func walResizeSteps(d *cluster.Cluster, o *ObservedCluster) []Step {
	w := d.Spec.WALStorage
	if w == nil || o.Spec.Spec.WALStorage == nil {
		return nil
	}
	var steps []Step
	for _, in := range o.Instances {
		size := in.WALVolumeSize
		if size == "" {
			size = o.Spec.Spec.WALStorage.Size
		}
		if in.Ordinal >= d.Spec.Instances || w.Size.Cmp(size) <= 0 {
			continue
		}
		st := instanceStep(PhaseResize, StepResizeWALVolume, d, in.Ordinal, roleOf(in.Ordinal, o.Primary),
			fmt.Sprintf("grow PersistentVolumeClaim pgwal-%s (pg_wal)", instanceName(d, in.Ordinal)))
		st.From, st.To = string(size), string(w.Size)
		if !*w.ResizeInUseVolumes {
			st.Reason += " (resizeInUseVolumes is false: the instance restarts so the volume is resized while unmounted)"
			st.Downtime = st.Role == RolePrimary
		}
		steps = append(steps, st)
	}
	return steps
}

// identityRefusals refuse a change of the user, group or fsGroup postgres
// runs as on a running cluster: PGDATA (0700) and pg_wal belong to the
// user that ran initdb, and postgres refuses to start on a data directory
// it does not own.
func identityRefusals(d *cluster.Cluster, o *ObservedCluster) []cluster.Diagnostic {
	var out []cluster.Diagnostic
	for _, f := range []struct {
		field string
		get   func(*cluster.Spec) *int
	}{
		{"spec.podSecurityContext.runAsUser", func(s *cluster.Spec) *int {
			if s.PodSecurityContext == nil {
				return nil
			}
			return s.PodSecurityContext.RunAsUser
		}},
		{"spec.podSecurityContext.runAsGroup", func(s *cluster.Spec) *int {
			if s.PodSecurityContext == nil {
				return nil
			}
			return s.PodSecurityContext.RunAsGroup
		}},
		{"spec.podSecurityContext.fsGroup", func(s *cluster.Spec) *int {
			if s.PodSecurityContext == nil {
				return nil
			}
			return s.PodSecurityContext.FSGroup
		}},
		{"spec.securityContext.runAsUser", func(s *cluster.Spec) *int {
			if s.SecurityContext == nil {
				return nil
			}
			return s.SecurityContext.RunAsUser
		}},
		{"spec.securityContext.runAsGroup", func(s *cluster.Spec) *int {
			if s.SecurityContext == nil {
				return nil
			}
			return s.SecurityContext.RunAsGroup
		}},
	} {
		b, a := idOrDefault(f.get(&o.Spec.Spec)), idOrDefault(f.get(&d.Spec))
		if b != a {
			out = append(out, cluster.Diagnostic{Pos: d.Pos(f.field), Field: f.field, Message: fmt.Sprintf(
				"refused: the data directory belongs to the identity that created it (%s → %s); postgres does not start on a directory it does not own", b, a)})
		}
	}
	return out
}

func idOrDefault(v *int) string {
	if v == nil {
		return "unset"
	}
	return fmt.Sprint(*v)
}
