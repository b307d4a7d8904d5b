package cluster

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Defaults, as in CloudNativePG except where noted.
const (
	DefaultInstances             = 1
	DefaultNamespace             = "default"
	DefaultPrimaryUpdateStrategy = "unsupervised"
	// DefaultPrimaryUpdateMethod differs from CloudNativePG ("restart"):
	// pgsync's purpose is the seed's rolling update with a switchover.
	DefaultPrimaryUpdateMethod = "switchover"
	DefaultImagePullPolicy     = "IfNotPresent"
	DefaultStartDelay          = 3600
	DefaultStopDelay           = 1800
	DefaultSwitchoverDelay     = 3600
	DefaultTopologyKey         = "kubernetes.io/hostname"
	DefaultPodAntiAffinityType = "preferred"

	// MaxNameLength leaves room for the longest derived object name,
	// NAME-replication, within Kubernetes' 63-character label limit.
	MaxNameLength = 50
)

// Set is the result of loading a repository: the clusters, sorted by
// namespace/name, and what the caller should tell the user.
type Set struct {
	Clusters []*Cluster
	// Warnings do not stop anything (an image pinned only by digest).
	Warnings []Diagnostic
	// Skipped documents are not pgsync Clusters (other kinds, other groups).
	Skipped []Skipped
	// Invalid are the Clusters that failed decoding or validation, as far
	// as they decoded, defaulted, so that a caller with checks of its own
	// (parameters against PostgreSQL's tables) reports all problems in one
	// pass (skipping fields already reported). Never plan or apply them.
	Invalid []*Cluster
}

// Load decodes, defaults and validates every Cluster in files. It returns
// Errors listing every problem found, in file order; on error the Set still
// holds what was skipped and warned about, but no cluster is trustworthy.
func Load(files []File) (Set, error) { return LoadWith(files, Options{}) }

// LoadWith is Load with options (the default image). Image catalogs may be
// in any file, so every file is decoded before any Cluster's image is
// resolved; problems still come in file order.
func LoadWith(files []File, opts Options) (Set, error) {
	var (
		set      Set
		problems Errors
		seen     = map[Key]*Cluster{}
		decoded  = make([]decodedFile, len(files))
	)
	var catalogs, badCatalogs []*ImageCatalog
	for i, f := range files {
		d := &decoded[i]
		d.clusters, d.undecoded, d.skipped, d.warnings, d.problems, d.catalogs, d.badCatalogs = decodeFile(f)
		catalogs = append(catalogs, d.catalogs...)
		badCatalogs = append(badCatalogs, d.badCatalogs...)
	}
	idx, dupCatalogs := indexCatalogs(catalogs, badCatalogs)
	for _, d := range decoded {
		clusters, undecoded := d.clusters, d.undecoded
		set.Skipped = append(set.Skipped, d.skipped...)
		set.Warnings = append(set.Warnings, d.warnings...)
		problems = append(problems, d.problems...)
		for _, dup := range dupCatalogs {
			if len(d.catalogs) > 0 && dup.Pos.File == d.catalogs[0].Source.File {
				problems = append(problems, dup)
			}
		}
		for _, c := range undecoded {
			// Checked as far as it decoded, so that a file's problems all
			// come in one pass; a field decoding refused is not reported
			// again (its value is the zero value, often "required").
			setDefaults(c)
			probs := resolveImage(c, idx, opts.DefaultImage)
			warnings, vprobs := validate(c)
			set.Warnings = append(set.Warnings, notReported(warnings, c.DecodeProblems)...)
			problems = append(problems, notReported(append(probs, vprobs...), c.DecodeProblems)...)
			set.Invalid = append(set.Invalid, c)
		}
		for _, c := range clusters {
			setDefaults(c)
			probs := resolveImage(c, idx, opts.DefaultImage)
			warnings, vprobs := validate(c)
			probs = append(probs, vprobs...)
			set.Warnings = append(set.Warnings, warnings...)
			if len(probs) > 0 {
				problems = append(problems, probs...)
				set.Invalid = append(set.Invalid, c)
				continue
			}
			if first, dup := seen[c.Key()]; dup {
				problems = append(problems, Diagnostic{
					Pos:     c.Pos("metadata.name"),
					Field:   "metadata.name",
					Message: fmt.Sprintf("cluster %s is defined twice: here and at %s", c.Key(), first.Pos("metadata.name")),
				})
				continue
			}
			seen[c.Key()] = c
			set.Clusters = append(set.Clusters, c)
		}
	}
	sort.Slice(set.Clusters, func(i, j int) bool { return set.Clusters[i].Key().Less(set.Clusters[j].Key()) })
	if len(problems) > 0 {
		return set, problems
	}
	return set, nil
}

// decodedFile is what decodeFile found in one file.
type decodedFile struct {
	clusters, undecoded   []*Cluster
	skipped               []Skipped
	warnings, problems    []Diagnostic
	catalogs, badCatalogs []*ImageCatalog
}

// notReported returns the diagnostics of ds about no field of reported,
// nor below one. (A field not written, "required", is about its own path,
// so it is reported even though it points at its parent's line.)
func notReported(ds, reported []Diagnostic) []Diagnostic {
	var out []Diagnostic
next:
	for _, d := range ds {
		// Annotations' checks name their fields metadata.annotations[KEY],
		// the decoder metadata.annotations.KEY.
		field := d.Field
		if key, ok := strings.CutPrefix(field, "metadata.annotations["); ok {
			field = "metadata.annotations." + strings.TrimSuffix(key, "]")
		}
		for _, r := range reported {
			if r.Field != "" && (field == r.Field || strings.HasPrefix(field, r.Field+".") || strings.HasPrefix(field, r.Field+"[")) {
				continue next
			}
		}
		out = append(out, d)
	}
	return out
}

func setDefaults(c *Cluster) {
	s := &c.Spec
	if c.Metadata.Namespace == "" {
		c.Metadata.Namespace = DefaultNamespace
	}
	if _, written := c.Positions["spec.instances"]; !written {
		s.Instances = DefaultInstances
	}
	if s.PrimaryUpdateStrategy == "" {
		s.PrimaryUpdateStrategy = DefaultPrimaryUpdateStrategy
	}
	if s.PrimaryUpdateMethod == "" {
		s.PrimaryUpdateMethod = DefaultPrimaryUpdateMethod
	}
	if s.ImagePullPolicy == "" {
		s.ImagePullPolicy = DefaultImagePullPolicy
	}
	if _, written := c.Positions["spec.startDelay"]; !written {
		s.StartDelay = DefaultStartDelay
	}
	if _, written := c.Positions["spec.stopDelay"]; !written {
		s.StopDelay = DefaultStopDelay
	}
	if _, written := c.Positions["spec.switchoverDelay"]; !written {
		s.SwitchoverDelay = DefaultSwitchoverDelay
	}
	if s.Storage.ResizeInUseVolumes == nil {
		t := true
		s.Storage.ResizeInUseVolumes = &t
	}
	fillFromTemplate(&s.Storage)
	if w := s.WALStorage; w != nil {
		fillFromTemplate(w)
	}
	if w := s.WALStorage; w != nil && w.ResizeInUseVolumes == nil {
		t := true
		w.ResizeInUseVolumes = &t
	}
	if s.Affinity.EnablePodAntiAffinity == nil {
		t := true
		s.Affinity.EnablePodAntiAffinity = &t
	}
	if s.Affinity.TopologyKey == "" {
		s.Affinity.TopologyKey = DefaultTopologyKey
	}
	if s.Affinity.PodAntiAffinityType == "" {
		s.Affinity.PodAntiAffinityType = DefaultPodAntiAffinityType
	}
}

var (
	dns1035Label = regexp.MustCompile(`^[a-z]([-a-z0-9]*[a-z0-9])?$`)
	dns1123Label = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	// paramName is PostgreSQL's GUC name syntax, with one dot allowed for
	// extension (custom) parameters.
	paramName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$`)
)

// validate checks one defaulted cluster. It returns warnings and problems,
// each at the position of the field concerned.
func validate(c *Cluster) (warnings, problems []Diagnostic) {
	bad := func(field, format string, args ...any) {
		problems = append(problems, Diagnostic{Pos: c.Pos(field), Field: field, Message: fmt.Sprintf(format, args...)})
	}
	oneOf := func(field, value string, allowed ...string) {
		for _, a := range allowed {
			if value == a {
				return
			}
		}
		bad(field, "invalid value %q (allowed: %s)", value, strings.Join(allowed, ", "))
	}
	s := &c.Spec

	switch name := c.Metadata.Name; {
	case name == "":
		bad("metadata.name", "required")
	case len(name) > MaxNameLength:
		bad("metadata.name", "%q is %d characters long; at most %d are allowed so that derived names (NAME-replication) stay valid", name, len(name), MaxNameLength)
	case !dns1035Label.MatchString(name):
		bad("metadata.name", "%q is not a valid name: lower-case letters, digits and '-', starting with a letter and ending with a letter or digit", name)
	case name == "default":
		bad("metadata.name", `"default" is reserved: the cluster's ServiceAccount, Role and RoleBinding are named after it, and the namespace's default ServiceAccount (every pod's identity unless it names another) would get the instances' rights`)
	case name == "pgsync" || strings.HasPrefix(name, "pgsync-"):
		bad("metadata.name", "%q is reserved: names starting with pgsync are pgsync's own objects (deploy/: ServiceAccounts pgsync-apply and pgsync-observer, Role pgsync-leader, …), which the cluster's ServiceAccount, Role and RoleBinding of the same name would take over", name)
	}
	if ns := c.Metadata.Namespace; len(ns) > 63 || !dns1123Label.MatchString(ns) {
		bad("metadata.namespace", "%q is not a valid namespace: lower-case letters, digits and '-', at most 63 characters", ns)
	} else if ns == "kube-system" || ns == "kube-public" || ns == "kube-node-lease" {
		bad("metadata.namespace", "%q is Kubernetes' own namespace, whose ServiceAccounts and Roles a cluster's objects could take over; use a namespace of your own", ns)
	}
	problems = append(problems, validateAnnotations(c)...)

	// An empty ImageName here means its imageCatalogRef was reported
	// (resolveImage). An image from a catalog or the default is checked
	// where it is written (the catalog entry, the flag), so its problems
	// point there.
	if s.ImageName != "" && c.ImageFrom == "" {
		if v, err := ParseVersion(s.ImageName); err != nil {
			bad("spec.imageName", "%v", err)
		} else if !v.Known {
			warnings = append(warnings, Diagnostic{Pos: c.Pos("spec.imageName"), Field: "spec.imageName",
				Message: "image is pinned by digest only: its PostgreSQL version is unknown, so version checks (major upgrades, parameter names) are off"})
		}
	}
	oneOf("spec.imagePullPolicy", s.ImagePullPolicy, "Always", "IfNotPresent", "Never")
	if s.Instances < 1 {
		bad("spec.instances", "must be at least 1 (got %d)", s.Instances)
	}
	oneOf("spec.primaryUpdateStrategy", s.PrimaryUpdateStrategy, "unsupervised", "supervised")
	oneOf("spec.primaryUpdateMethod", s.PrimaryUpdateMethod, "switchover", "restart")
	for _, f := range []struct {
		field string
		value int
	}{{"spec.startDelay", s.StartDelay}, {"spec.stopDelay", s.StopDelay}, {"spec.switchoverDelay", s.SwitchoverDelay}} {
		if f.value < 1 {
			bad(f.field, "must be a positive number of seconds (got %d)", f.value)
		}
	}
	if s.FailoverDelay < 0 {
		bad("spec.failoverDelay", "must not be negative (got %d)", s.FailoverDelay)
	}

	validateStorage("spec.storage", &s.Storage, bad)
	if s.WALStorage != nil {
		validateStorage("spec.walStorage", s.WALStorage, bad)
	}
	validateProbes(s.Probes, bad)
	validateCertificates(c, bad)
	validateSecurity(s, bad)
	validateScheduling(s, bad)
	warnings = append(warnings, schedulingWarnings(c)...)

	for _, name := range sortedKeys(s.PostgreSQL.Parameters) {
		if !paramName.MatchString(name) {
			bad("spec.postgresql.parameters."+name, "%q is not a valid parameter name", name)
		}
	}
	major := 0
	if v, err := ParseVersion(s.ImageName); err == nil && v.Known {
		major = v.Major
	}
	for i, line := range s.PostgreSQL.PgHBA {
		field := fmt.Sprintf("spec.postgresql.pg_hba[%d]", i)
		r, err := ParseHBA(line, major)
		switch {
		case err != nil:
			bad(field, "%v", err)
		case r.Type != "local" && r.Method == "password":
			warnings = append(warnings, Diagnostic{Pos: c.Pos(field), Field: field,
				Message: "password sends the password in clear text over an unencrypted connection; scram-sha-256 never sends it"})
		}
	}

	validateSynchronous(c, bad)
	validateSuperuser(c, bad)
	validateSlots(c, bad)
	validateMonitoring(c, bad)
	validatePodMonitor(c, bad)
	validateServices(c, bad)
	validateInitDB(c, major, bad)
	validateRoles(c, bad, func(field, format string, args ...any) {
		warnings = append(warnings, Diagnostic{Pos: c.Pos(field), Field: field, Message: fmt.Sprintf(format, args...)})
	})
	validateResources(s.Resources, bad)

	oneOf("spec.affinity.podAntiAffinityType", s.Affinity.PodAntiAffinityType, "preferred", "required")
	for i, t := range s.Affinity.Tolerations {
		field := fmt.Sprintf("spec.affinity.tolerations[%d]", i)
		if t.Operator != "" {
			oneOf(field+".operator", t.Operator, "Exists", "Equal")
		}
		if t.Effect != "" {
			oneOf(field+".effect", t.Effect, "NoSchedule", "PreferNoSchedule", "NoExecute")
		}
		if t.Operator == "Exists" && t.Value != "" {
			bad(field+".value", "must be empty when operator is Exists")
		}
		if t.TolerationSeconds != nil && t.Effect != "NoExecute" {
			bad(field+".tolerationSeconds", "only allowed with effect NoExecute (got effect %q)", t.Effect)
		}
		if t.Key == "" && t.Operator != "Exists" {
			bad(field+".key", "required unless operator is Exists")
		}
	}
	return warnings, problems
}

func validateResources(r ResourceRequirements, bad func(field, format string, args ...any)) {
	for _, kind := range []struct {
		name string
		m    map[string]Quantity
	}{{"requests", r.Requests}, {"limits", r.Limits}} {
		for _, res := range sortedKeys(kind.m) {
			if res != "cpu" && res != "memory" && res != "ephemeral-storage" && !strings.HasPrefix(res, "hugepages-") {
				bad("spec.resources."+kind.name+"."+res, "unknown resource %q (allowed: cpu, memory, ephemeral-storage, hugepages-<size>)", res)
			}
		}
	}
	for _, res := range sortedKeys(r.Requests) {
		if limit, ok := r.Limits[res]; ok && r.Requests[res].Cmp(limit) > 0 {
			bad("spec.resources.requests."+res, "request %s is greater than the limit %s", r.Requests[res], limit)
		}
	}
}

func dns1123Subdomain(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, part := range strings.Split(s, ".") {
		if !dns1123Label.MatchString(part) {
			return false
		}
	}
	return true
}
