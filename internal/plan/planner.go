package plan

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/revision"
)

// Make plans every cluster: desired from Git, observed from Kubernetes or a
// base commit. It returns cluster.Errors, positioned in the desired files,
// when a change must be refused; nothing is planned then, so nothing is
// half-applied.
func Make(desired []*cluster.Cluster, observed Observed, opts Options) (*Plan, error) {
	obs := map[cluster.Key]*ObservedCluster{}
	keys := map[cluster.Key]bool{}
	for i := range observed.Clusters {
		oc := &observed.Clusters[i]
		obs[oc.Spec.Key()] = oc
		keys[oc.Spec.Key()] = true
	}
	want := map[cluster.Key]*cluster.Cluster{}
	for _, c := range desired {
		want[c.Key()] = c
		keys[c.Key()] = true
	}
	sorted := make([]cluster.Key, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Less(sorted[j]) })

	p := &Plan{}
	var problems cluster.Errors
	for _, k := range sorted {
		d, o := want[k], obs[k]
		var cp ClusterPlan
		switch {
		case o == nil:
			cp, problems = planCreate(d), append(problems, refusals(d, nil)...)
		case d == nil:
			cp = planRemoved(o, opts)
		default:
			var refused []cluster.Diagnostic
			cp, refused = planUpdate(d, o)
			problems = append(problems, refused...)
		}
		cp.Namespace, cp.Name = k.Namespace, k.Name
		if d != nil && d.ImageFrom != "" {
			cp.ImageFrom = fmt.Sprintf("%s (%s)", d.Spec.ImageName, d.ImageFrom)
		}
		if o != nil {
			cp.Observed = Fingerprint(o)
		}
		p.Clusters = append(p.Clusters, cp)
	}
	problems = append(problems, podMonitorRefusals(desired, observed.PodMonitorKind)...)
	if len(problems) > 0 {
		return nil, problems
	}
	return p, nil
}

func instanceName(c *cluster.Cluster, ordinal int) string {
	return fmt.Sprintf("%s-%d", c.Metadata.Name, ordinal)
}

// refusals are the changes from o (nil: nothing runs yet) to d that pgsync
// will not make, each at the offending field.
func refusals(d *cluster.Cluster, o *ObservedCluster) []cluster.Diagnostic {
	var out []cluster.Diagnostic
	refuse := func(field, format string, args ...any) {
		out = append(out, cluster.Diagnostic{Pos: d.Pos(field), Field: field, Message: fmt.Sprintf(format, args...)})
	}
	_, paramProblems := CheckParameters(d)
	out = append(out, paramProblems...)
	if o == nil {
		return out
	}
	before, _ := cluster.ParseVersion(o.Spec.Spec.ImageName)
	after, _ := cluster.ParseVersion(d.Spec.ImageName)
	if before.Known && after.Known && before.Major != after.Major {
		refuse("spec.imageName", "refused: a major version change (PostgreSQL %d → %d) cannot be rolled out; a major upgrade needs pg_upgrade or a logical migration into a new cluster", before.Major, after.Major)
	}
	size := o.Spec.Spec.Storage.Size
	for _, in := range o.Instances {
		if in.VolumeSize != "" && in.VolumeSize.Cmp(size) > 0 {
			size = in.VolumeSize
		}
	}
	if d.Spec.Storage.Size.Cmp(size) < 0 {
		refuse("spec.storage.size", "refused: storage cannot shrink (%s → %s); volumes can only grow", size, d.Spec.Storage.Size)
	}
	if b, a := deref(o.Spec.Spec.Storage.StorageClass), deref(d.Spec.Storage.StorageClass); b != a {
		refuse("spec.storage.storageClass", "refused: the storage class of existing volumes cannot change (%s → %s)", orUnset(b), orUnset(a))
	}
	out = append(out, walRefusals(d, o)...)
	out = append(out, identityRefusals(d, o)...)
	out = append(out, initdbRefusals(d, o)...)
	out = append(out, templateRefusals(d, "spec.storage", &o.Spec.Spec.Storage, &d.Spec.Storage)...)
	return out
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func orUnset(s string) string {
	if s == "" {
		return "(cluster default)"
	}
	return s
}

func planCreate(d *cluster.Cluster) ClusterPlan {
	cp := ClusterPlan{Action: ActionCreate, Changes: diffSpecs(nil, d), Warnings: parameterNotes(d)}
	cp.Steps = append(cp.Steps, clusterStep(PhaseObjects, StepUpdateObjects,
		fmt.Sprintf("create the cluster's objects: Secrets (generated, never in Git), ServiceAccount, Role, RoleBinding, Services %[2]s, Lease %[1]s-primary, PodDisruptionBudgets, NetworkPolicy %[1]s and StatefulSet %[1]s%[3]s", d.Metadata.Name, strings.Join(d.ServiceNames(), ", "), podMonitorObjects(d))))
	primary := instanceName(d, 0)
	cp.Steps = append(cp.Steps, createPrimaryStep(d))
	for i := 1; i < d.Spec.Instances; i++ {
		st := instanceStep(PhaseScaleUp, StepCreateInstance, d, i, RoleStandby,
			fmt.Sprintf("new standby: base backup from %s, then wait until it is ready and streaming", primary))
		st.To = d.Spec.ImageName
		cp.Steps = append(cp.Steps, st)
	}
	if d.Spec.Instances == 1 {
		cp.Warnings = append(cp.Warnings, "a single instance has no standby: any update of the image or of restart-only parameters means downtime")
	}
	return cp
}

// parameterNotes are the parameter warnings of a cluster, as plan text.
func parameterNotes(c *cluster.Cluster) []string {
	warnings, _ := CheckParameters(c)
	var out []string
	for _, w := range warnings {
		out = append(out, w.Message)
	}
	return out
}

func createPrimaryStep(d *cluster.Cluster) Step {
	st := instanceStep(PhaseScaleUp, StepCreateInstance, d, 0, RolePrimary, "new primary: initdb, then wait until it is ready")
	st.To = d.Spec.ImageName
	return st
}

func planRemoved(o *ObservedCluster, opts Options) ClusterPlan {
	if !opts.Prune {
		return ClusterPlan{Action: ActionOrphan, Warnings: []string{
			"removed from Git: left running and no longer managed by pgsync; plan with --prune to delete it (volumes and Secrets are always kept)",
		}}
	}
	st := clusterStep(PhaseObjects, StepDeleteCluster,
		fmt.Sprintf("removed from Git: delete StatefulSet %[1]s and its pods, Services, Lease, PodDisruptionBudget, NetworkPolicy and RBAC objects; PersistentVolumeClaims (the data) and Secrets are kept", o.Spec.Metadata.Name))
	st.Downtime = true
	return ClusterPlan{Action: ActionDelete, Steps: []Step{st}, Warnings: []string{"the cluster stops serving: all its instances are deleted"}}
}

// planUpdate plans a cluster that runs and stays in Git. Steps come in
// fixed phases (Phases): objects, reload, volumes, scale down, scale up,
// rolling restarts (standbys, then the primary).
func planUpdate(d *cluster.Cluster, o *ObservedCluster) (ClusterPlan, []cluster.Diagnostic) {
	if refused := refusals(d, o); len(refused) > 0 {
		return ClusterPlan{}, refused
	}
	cp := ClusterPlan{Action: ActionUpdate, Changes: diffSpecs(o.Spec, d), Warnings: parameterNotes(d)}
	if before, after := versionOf(o.Spec), versionOf(d); before.MinorKnown && after.MinorKnown && after.Minor < before.Minor {
		cp.Warnings = append(cp.Warnings, fmt.Sprintf("minor downgrade %s → %s", before, after))
	}
	if w := noTLSWarning(d, o); w != "" {
		cp.Warnings = append(cp.Warnings, w)
	}
	cp.Warnings = append(cp.Warnings, certificateWarnings(d, o)...)
	if w := superuserDriftWarning(d, o); w != "" {
		cp.Warnings = append(cp.Warnings, w)
	}
	rev := revision.Restart(d)
	desired := d.Spec.Instances
	primary := o.Primary

	// Phase 1: objects. Any spec change is applied to the objects first;
	// with updateStrategy OnDelete this restarts nothing.
	if len(cp.Changes) > 0 || len(o.Drift) > 0 {
		var reason string
		if len(cp.Changes) > 0 {
			reason = "apply the new spec to the cluster's objects (StatefulSet template, configuration, Services); no pod restarts: the StatefulSet updates OnDelete"
			if d.Spec.Storage.Size.Cmp(o.Spec.Spec.Storage.Size) > 0 || walGrows(d, o) {
				reason += "; the StatefulSet's volume claim template is immutable, so the StatefulSet object is re-created without deleting its pods"
			}
			if s := serviceChanges(o.Spec, d); s != "" {
				reason += "; " + s
			}
			if s := podMonitorChange(o.Spec, d); s != "" {
				reason += "; " + s
			}
		}
		if len(o.Drift) > 0 {
			if reason != "" {
				reason += "; "
			}
			reason += "undo drift in objects pgsync owns: " + strings.Join(o.Drift, ", ")
		}
		cp.Steps = append(cp.Steps, clusterStep(PhaseObjects, StepUpdateObjects, reason))
	}
	rotate, caWarnings := caRotation(d, o)
	cp.Steps = append(cp.Steps, rotate...)
	cp.Warnings = append(cp.Warnings, caWarnings...)

	// Phase 2: reload-only configuration, on every kept instance that has
	// not loaded it yet.
	config := revision.Config(d)
	var stale []string
	for _, in := range o.Instances {
		// An instance that is not ready loads the configuration when it
		// starts; a reload cannot reach it (and, halted, nothing may).
		if in.Ordinal < desired && in.Ready && in.Config != config {
			stale = append(stale, instanceName(d, in.Ordinal))
		}
	}
	if len(stale) > 0 {
		reason := "reload the configuration, nothing restarts: "
		if changes := reloadChanges(o.Spec, d); len(changes) > 0 {
			reason += strings.Join(changes, ", ")
		} else {
			reason += "instances still on the previous configuration: " + strings.Join(stale, ", ")
		}
		cp.Steps = append(cp.Steps, clusterStep(PhaseReload, StepReloadConfig, reason))
	}

	// Phase 3: volumes grow in place.
	for _, in := range o.Instances {
		size := in.VolumeSize
		if size == "" {
			size = o.Spec.Spec.Storage.Size
		}
		if in.Ordinal >= desired || d.Spec.Storage.Size.Cmp(size) <= 0 {
			continue
		}
		st := instanceStep(PhaseResize, StepResizeVolume, d, in.Ordinal, roleOf(in.Ordinal, primary),
			fmt.Sprintf("grow PersistentVolumeClaim pgdata-%s", instanceName(d, in.Ordinal)))
		st.From, st.To = string(size), string(d.Spec.Storage.Size)
		if !*d.Spec.Storage.ResizeInUseVolumes {
			st.Reason += " (resizeInUseVolumes is false: the instance restarts so the volume is resized while unmounted)"
			st.Downtime = st.Role == RolePrimary
		}
		cp.Steps = append(cp.Steps, st)
	}

	cp.Steps = append(cp.Steps, walResizeSteps(d, o)...)

	halted := haltedBy(o, rev)
	cp.Halted = halted
	if halted != "" {
		cp.Warnings = append(cp.Warnings, fmt.Sprintf("rollout held: %s runs the new spec and is not ready; nothing further is touched until it is, or a commit fixes the spec", halted))
	}

	// Phase 4: scale down, highest ordinals first; the primary never goes
	// without a switchover first.
	remaining := append([]ObservedInstance(nil), o.Instances...) // a copy: the planner never changes its input
	if len(o.Instances) > desired && halted == "" {
		kept := remaining[:0]
		for _, in := range remaining {
			if in.Ordinal < desired {
				kept = append(kept, in)
			}
		}
		if primary >= desired {
			target, ok := SwitchoverTarget(o, rev, desired)
			if !ok {
				target, ok = SwitchoverTarget(o, "", desired)
			}
			if !ok {
				// Every kept instance is down: restart one onto the new spec
				// so it can take over.
				i := len(kept) - 1
				cp.Steps = append(cp.Steps, restartStep(PhaseScaleDown, d, kept[i], RoleStandby,
					"standby that must take over before the scale down, and is not ready: "+restartReason(o.Spec, d)))
				kept[i].Image, kept[i].Revision, kept[i].Config, kept[i].Ready = d.Spec.ImageName, rev, config, true
				target = kept[i].Ordinal
			}
			cp.Steps = append(cp.Steps, switchoverStep(PhaseScaleDown, d, primary, target, "the primary is among the instances removed by the scale down"))
			primary = target
		}
		for i := len(o.Instances) - 1; i >= 0; i-- {
			in := o.Instances[i]
			if in.Ordinal < desired {
				continue
			}
			cp.Steps = append(cp.Steps, instanceStep(PhaseScaleDown, StepRemoveInstance, d, in.Ordinal, RoleStandby,
				fmt.Sprintf("scale down %d → %d; PersistentVolumeClaim pgdata-%s and its data are kept", len(o.Instances), desired, instanceName(d, in.Ordinal))))
		}
		remaining = kept
	}

	// Phase 5: scale up, one new standby at a time, from the new template.
	if len(o.Instances) < desired && halted == "" {
		from := len(o.Instances)
		if from == 0 {
			// Objects exist but no instance yet: a creation that was
			// interrupted before its primary.
			cp.Steps = append(cp.Steps, createPrimaryStep(d))
			from = 1
		}
		for i := from; i < desired; i++ {
			st := instanceStep(PhaseScaleUp, StepCreateInstance, d, i, RoleStandby,
				fmt.Sprintf("scale up %d → %d: base backup from %s, then wait until it is ready and streaming", len(o.Instances), desired, instanceName(d, primary)))
			st.To = d.Spec.ImageName
			cp.Steps = append(cp.Steps, st)
		}
		// The new instances run the new spec: the rolling restart below
		// counts them, and may switch over to one.
		for i := len(o.Instances); i < desired; i++ {
			remaining = append(remaining, ObservedInstance{Ordinal: i, Image: d.Spec.ImageName, Revision: rev, Config: config, Ready: true})
		}
	}

	// Phase 6: rolling restarts.
	if halted == "" {
		cp.Steps = append(cp.Steps, rollingRestart(d, o, remaining, primary, rev, &cp.Warnings)...)
	}
	return finish(cp), nil
}

// noTLSWarning names the instances whose pods predate pgsync's TLS: turning
// TLS on is no reason to restart them (invariant 8), so they keep serving
// without it until their pods are re-created.
func noTLSWarning(d *cluster.Cluster, o *ObservedCluster) string {
	var names []string
	for _, in := range o.Instances {
		if in.NoTLS && !cutOffByTLS(o, in) { // those restart, saying why
			names = append(names, fmt.Sprintf("%s-%d", d.Metadata.Name, in.Ordinal))
		}
	}
	if len(names) == 0 {
		return ""
	}
	return fmt.Sprintf("TLS: %s run without TLS (created before pgsync's TLS) until their pods are re-created, at the next rolling restart or a pod deletion; nothing restarts for it", strings.Join(names, ", "))
}

// certificateWarnings repeat what each instance's manager finds wrong with
// spec.certificates' Secrets of the user's (a certificate that does not
// name the address the instances verify each other by, say): pgsync cannot
// read those Secrets, the managers can. Nothing is planned for it: a
// corrected Secret reaches the pods by itself.
func certificateWarnings(d *cluster.Cluster, o *ObservedCluster) []string {
	var out []string
	for _, in := range o.Instances {
		if in.TLSProblem != "" {
			out = append(out, fmt.Sprintf("TLS: %s-%d: spec.certificates: %s", d.Metadata.Name, in.Ordinal, in.TLSProblem))
		}
	}
	return out
}

// cutOffByTLS says whether standby in can stream from o's primary at all:
// a pod created before pgsync's TLS has no client certificate and speaks
// plaintext, which a primary with TLS refuses. Only a re-created pod
// cures it, so the rolling restart re-creates it even on the desired
// revision — a repair, not a restart for TLS alone (invariant 8): it
// arises only after a switchover or failover to a re-created instance.
func cutOffByTLS(o *ObservedCluster, in ObservedInstance) bool {
	if !in.NoTLS || in.Ordinal == o.Primary {
		return false
	}
	for _, p := range o.Instances {
		if p.Ordinal == o.Primary {
			return !p.NoTLS
		}
	}
	return false
}

// finish turns an update with nothing to do into a no-op.
// A halted rollout is not a no-op even with nothing planned: the cluster
// does not match Git, and saying "no changes" would hide it.
func finish(cp ClusterPlan) ClusterPlan {
	if len(cp.Steps) == 0 && len(cp.Changes) == 0 && cp.Halted == "" {
		cp.Action = ActionNoOp
	}
	return cp
}

func versionOf(c *cluster.Cluster) cluster.Version {
	v, _ := cluster.ParseVersion(c.Spec.ImageName)
	return v
}

func roleOf(ordinal, primary int) Role {
	if ordinal == primary {
		return RolePrimary
	}
	return RoleStandby
}

// haltedBy names an instance that already runs the desired revision but is
// not ready: the new spec does not work, so the rollout stops (invariant
// 5). Instances that are not ready on an old revision do not halt it:
// restarting them onto a fixed spec is how a fixing commit resumes.
func haltedBy(o *ObservedCluster, revision string) string {
	for _, in := range o.Instances {
		if in.Revision == revision && !in.Ready && recreateReason(o.Spec, o, in) == "" {
			return instanceName(o.Spec, in.Ordinal)
		}
	}
	return ""
}

// rollingRestart restarts every outdated instance one at a time: standbys
// first (not-ready ones, then most lagging, then highest ordinal), then
// the primary by switchover or in place.
func rollingRestart(d *cluster.Cluster, o *ObservedCluster, instances []ObservedInstance, primary int, revision string, warnings *[]string) []Step {
	var standbys []ObservedInstance
	primaryOutdated := false
	// Instances on the desired revision whose pods must still be
	// re-created (recreateReason), with why.
	recreate := map[int]string{}
	for _, in := range instances {
		if in.Revision != revision {
			continue
		}
		if why := recreateReason(d, &ObservedCluster{Primary: primary, Instances: instances}, in); why != "" {
			recreate[in.Ordinal] = why
		}
	}
	for _, in := range instances {
		if in.Revision == revision && recreate[in.Ordinal] == "" {
			continue
		}
		if in.Ordinal == primary {
			primaryOutdated = true
			continue
		}
		standbys = append(standbys, in)
	}
	sort.SliceStable(standbys, func(i, j int) bool {
		a, b := standbys[i], standbys[j]
		if a.Ready != b.Ready {
			return !a.Ready
		}
		if a.LagBytes != b.LagBytes {
			return a.LagBytes > b.LagBytes
		}
		return a.Ordinal > b.Ordinal
	})
	var steps []Step
	reason := restartReason(o.Spec, d)
	for _, in := range standbys {
		why := "standby: " + reason
		if r := recreate[in.Ordinal]; r != "" {
			why = r
		}
		steps = append(steps, restartStep(PhaseRollingStandbys, d, in, RoleStandby, why))
	}
	if !primaryOutdated {
		return steps
	}
	var primaryIn ObservedInstance
	for _, in := range instances {
		if in.Ordinal == primary {
			primaryIn = in
		}
	}
	if r := recreate[primary]; r != "" {
		reason = r
	}
	if d.Spec.PrimaryUpdateStrategy == "supervised" && o.ApprovedRevision != revision {
		steps = append(steps, instanceStep(PhasePrimary, StepAwaitApproval, d, primary, RolePrimary,
			"primaryUpdateStrategy is supervised: the standbys are updated; the primary waits for approval"))
	}
	switch {
	case len(instances) == 1:
		*warnings = append(*warnings, "a single instance: updating it restarts the primary, with downtime")
		st := restartStep(PhasePrimary, d, primaryIn, RolePrimary, "the only instance: "+reason)
		st.Downtime = true
		return append(steps, st)
	case d.Spec.PrimaryUpdateMethod == "restart":
		*warnings = append(*warnings, "primaryUpdateMethod is restart: the primary restarts in place and writes stop until it is back")
		st := restartStep(PhasePrimary, d, primaryIn, RolePrimary, "primary, in place (primaryUpdateMethod restart): "+reason)
		st.Downtime = true
		return append(steps, st)
	}
	// After the standby restarts every other instance is updated; the
	// target is the one the observer saw most advanced (least lag).
	after := make([]ObservedInstance, 0, len(instances))
	for _, in := range instances {
		in.Revision, in.Ready = revision, true
		after = append(after, in)
	}
	target, _ := SwitchoverTarget(&ObservedCluster{Spec: o.Spec, Primary: primary, Instances: after, SyncRestricted: o.SyncRestricted}, revision, len(instances))
	steps = append(steps, switchoverStep(PhasePrimary, d, primary, target, "move the primary to an updated standby before updating it"))
	return append(steps, restartStep(PhasePrimary, d, primaryIn, RoleStandby,
		fmt.Sprintf("former primary, now a standby of %s: %s", instanceName(d, target), reason)))
}

// SwitchoverTarget picks the ready standby with the least lag (then the
// lowest ordinal) among ordinals below limit that runs revision; an empty
// revision accepts any. With synchronous replication it is one the
// primary lists in synchronous_standby_names (o.SyncRestricted), as
// CloudNativePG's switchover requires; an unlisted one only when no
// listed one qualifies (e.g. a scale down removes them all) — nothing is
// lost either way, as the target replays the old primary's final WAL.
func SwitchoverTarget(o *ObservedCluster, revision string, limit int) (int, bool) {
	if o.SyncRestricted {
		if t, ok := bestTarget(o, revision, limit, true); ok {
			return t, true
		}
	}
	return bestTarget(o, revision, limit, false)
}

func bestTarget(o *ObservedCluster, revision string, limit int, listedOnly bool) (int, bool) {
	best, found := ObservedInstance{}, false
	for _, in := range o.Instances {
		if in.Ordinal == o.Primary || in.Ordinal >= limit || !in.Ready || (revision != "" && in.Revision != revision) || (listedOnly && !in.SyncListed) {
			continue
		}
		if !found || in.LagBytes < best.LagBytes || (in.LagBytes == best.LagBytes && in.Ordinal < best.Ordinal) {
			best, found = in, true
		}
	}
	return best.Ordinal, found
}

// clusterStep is a step on the whole cluster: no instance, no ordinals.
func clusterStep(phase Phase, action StepAction, reason string) Step {
	return Step{Action: action, Ordinal: NoOrdinal, TargetOrdinal: NoOrdinal, Phase: phase, Reason: reason}
}

// instanceStep is a step on d's instance ordinal; every per-instance step
// is built here, so its name and Ordinal agree.
func instanceStep(phase Phase, action StepAction, d *cluster.Cluster, ordinal int, role Role, reason string) Step {
	return Step{Action: action, Instance: instanceName(d, ordinal), Ordinal: ordinal, TargetOrdinal: NoOrdinal,
		Role: role, Phase: phase, Reason: reason}
}

func switchoverStep(phase Phase, d *cluster.Cluster, from, to int, why string) Step {
	st := instanceStep(phase, StepSwitchover, d, from, RolePrimary,
		why+": checkpoint, stop the primary, promote the standby once it has replayed all WAL; writes pause briefly, no commit is lost"+replicationMode(d))
	st.From, st.To, st.TargetOrdinal = instanceName(d, from), instanceName(d, to), to
	return st
}

// replicationMode says, for a cluster with synchronous replication, which
// mode it runs in ("" for asynchronous: the switchover text says it all).
// Every ready standby streams, so the primary's manager lists it in
// synchronous_standby_names (unless maxStandbyNamesFromCluster leaves it
// out), and the target replays the old primary's last WAL either way.
func replicationMode(d *cluster.Cluster) string {
	s := &d.Spec
	switch y := s.PostgreSQL.Synchronous; {
	case y != nil:
		dur := y.DataDurability
		if dur == "" {
			dur = "required"
		}
		return fmt.Sprintf("; synchronous replication (%s %d, %s): the target is a streaming standby, listed in synchronous_standby_names", strings.ToUpper(y.Method), y.Number, dur)
	case s.MaxSyncReplicas > 0:
		return fmt.Sprintf("; synchronous replication (legacy, ANY %d..%d of the streaming standbys): the target is a streaming standby, listed in synchronous_standby_names", s.MinSyncReplicas, s.MaxSyncReplicas)
	}
	return ""
}

func restartStep(phase Phase, d *cluster.Cluster, in ObservedInstance, role Role, reason string) Step {
	st := instanceStep(phase, StepRestartInstance, d, in.Ordinal, role, reason)
	if in.Image != d.Spec.ImageName {
		st.From, st.To = in.Image, d.Spec.ImageName
	}
	return st
}

// restartReason says which restart-only settings changed.
func restartReason(before, after *cluster.Cluster) string {
	var what []string
	if before.Spec.ImageName != after.Spec.ImageName {
		what = append(what, imageChange(before.Spec.ImageName, after.Spec.ImageName))
	}
	b, a := revision.RestartParameters(before), revision.RestartParameters(after)
	for _, name := range unionKeys(b, a) {
		if b[name] != a[name] {
			what = append(what, fmt.Sprintf("%s %s → %s", name, valueOrDefault(b, name), valueOrDefault(a, name)))
		}
	}
	if !jsonEqual(before.Spec.Resources, after.Spec.Resources) {
		what = append(what, "resources")
	}
	if !jsonEqual(ownAffinity(before), ownAffinity(after)) {
		what = append(what, "affinity")
	}
	what = append(what, schedulingChanges(before, after)...)
	if b, a := before.Spec.RolePasswordSecrets(), after.Spec.RolePasswordSecrets(); !sameList(b, a) {
		what = append(what, fmt.Sprintf("managed roles' password Secrets mounted: %s → %s", orNone(b), orNone(a)))
	}
	if len(what) == 0 {
		return "restart onto the current spec"
	}
	return "restart for " + strings.Join(what, ", ")
}

// reloadChanges lists the reload-only parameter and pg_hba changes.
func reloadChanges(before, after *cluster.Cluster) []string {
	restartB, restartA := revision.RestartParameters(before), revision.RestartParameters(after)
	b, a := lowerKeys(before.Spec.PostgreSQL.Parameters), lowerKeys(after.Spec.PostgreSQL.Parameters)
	var out []string
	for _, name := range unionKeys(b, a) {
		_, rb := restartB[name]
		_, ra := restartA[name]
		if b[name] == a[name] || rb || ra {
			continue
		}
		out = append(out, fmt.Sprintf("%s %s → %s", name, valueOrDefault(b, name), valueOrDefault(a, name)))
	}
	if strings.Join(before.Spec.PostgreSQL.PgHBA, "\n") != strings.Join(after.Spec.PostgreSQL.PgHBA, "\n") {
		out = append(out, "pg_hba rules")
	}
	return append(out, roleChanges(before, after)...)
}

func lowerKeys(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[strings.ToLower(k)] = v
	}
	return out
}

func unionKeys(a, b map[string]string) []string {
	set := map[string]bool{}
	for k := range a {
		set[k] = true
	}
	for k := range b {
		set[k] = true
	}
	return sortedKeys(set)
}

func valueOrDefault(m map[string]string, k string) string {
	if v, ok := m[k]; ok {
		return v
	}
	return "(default)"
}

// imageChange says how an image changes: its tag, or — the same tag — its
// digest, which an image policy pins (--image-policy): the instances then
// restart once onto exactly the verified image, since a pod started from
// a tag runs whatever the tag named when it was pulled.
func imageChange(before, after string) string {
	b, errB := cluster.ParseImage(before)
	a, errA := cluster.ParseImage(after)
	if errB != nil || errA != nil || b.Repository != a.Repository || b.Tag != a.Tag || a.Tag == "" {
		return fmt.Sprintf("image %s → %s", tagOf(before), tagOf(after))
	}
	switch {
	case b.Digest == "":
		return fmt.Sprintf("image %s pinned to its verified digest %s (image policy)", a.Tag, a.Digest)
	case a.Digest == "":
		return fmt.Sprintf("image %s no longer pinned (was %s)", a.Tag, b.Digest)
	}
	return fmt.Sprintf("image %s moved: digest %s → %s", a.Tag, b.Digest, a.Digest)
}

func tagOf(image string) string {
	img, err := cluster.ParseImage(image)
	if err != nil || img.Tag == "" {
		return image
	}
	return img.Tag
}

func jsonEqual(a, b any) bool {
	ra, _ := json.Marshal(a)
	rb, _ := json.Marshal(b)
	return string(ra) == string(rb)
}
