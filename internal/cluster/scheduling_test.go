package cluster

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// TestSchedulingRefusals: every mistake in the pod-level settings
// (imagePullSecrets, priorityClassName, schedulerName,
// topologySpreadConstraints, node and additional pod (anti-)affinity,
// ephemeralVolumesSizeLimit) is reported at its line, all in one pass; the
// shared-memory limit pgsync has no volume for is refused by name.
func TestSchedulingRefusals(t *testing.T) {
	data, err := os.ReadFile("testdata/scheduling-bad.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, errs := load(t, File{Path: "c.yaml", Data: data})
	var got []string
	for _, e := range errs {
		got = append(got, e.String())
	}
	slices.Sort(got)
	want := []string{
		`c.yaml:10:46: spec.ephemeralVolumesSizeLimit.temporaryData: must be greater than zero (got 0)`,
		`c.yaml:10:49: spec.ephemeralVolumesSizeLimit.shm: a size limit of the shared memory volume is not supported by pgsync: the pods have no /dev/shm volume of their own (PostgreSQL uses the container runtime's /dev/shm); temporaryData is supported`,
		`c.yaml:12:16: spec.topologySpreadConstraints[0].maxSkew: must be at least 1 (got 0)`,
		`c.yaml:12:7: spec.topologySpreadConstraints[0].topologyKey: required: the node label whose values are the domains to spread over (e.g. topology.kubernetes.io/zone)`,
		`c.yaml:13:26: spec.topologySpreadConstraints[0].whenUnsatisfiable: invalid value "Maybe" (allowed: DoNotSchedule, ScheduleAnyway)`,
		`c.yaml:14:102: spec.topologySpreadConstraints[0].labelSelector.matchExpressions[0].operator: invalid value "Like" (allowed: In, NotIn, Exists, DoesNotExist)`,
		`c.yaml:18:19: spec.topologySpreadConstraints[1].minDomains: only allowed with whenUnsatisfiable DoNotSchedule`,
		`c.yaml:19:27: spec.topologySpreadConstraints[1].nodeAffinityPolicy: invalid value "Always" (allowed: Honor, Ignore)`,
		`c.yaml:20:24: spec.topologySpreadConstraints[1].matchLabelKeys[0]: needs labelSelector: the keys add to it`,
		`c.yaml:21:7: spec.topologySpreadConstraints[2]: duplicate of topologySpreadConstraints[1]: the same topologyKey and whenUnsatisfiable (Kubernetes refuses the pod)`,
		`c.yaml:25:24: spec.topologySpreadConstraints[2].matchLabelKeys[0]: "pgsync.io/cluster" is also in labelSelector (Kubernetes refuses the pod)`,
		`c.yaml:30:68: spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values[0]: operator Gt takes an integer (got "many")`,
		`c.yaml:31:13: spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[1]: an empty term matches no node: give matchExpressions or matchFields`,
		`c.yaml:32:33: spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[2].matchFields[0].key: invalid field "metadata.labels" (allowed: metadata.name)`,
		`c.yaml:32:60: spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[2].matchFields[0].operator: invalid value "Exists" for a field (allowed: In, NotIn)`,
		`c.yaml:34:19: spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: must be between 1 and 100 (got 0)`,
		`c.yaml:35:43: spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].preference.matchExpressions[0].values: required with operator In`,
		`c.yaml:38:11: spec.affinity.additionalPodAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey: required: the node label whose values are the domains (e.g. kubernetes.io/hostname)`,
		`c.yaml:39:24: spec.affinity.additionalPodAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].namespaces[0]: "Caches" is not a valid namespace`,
		`c.yaml:42:19: spec.affinity.additionalPodAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: must be between 1 and 100 (got 101)`,
		`c.yaml:43:105: spec.affinity.additionalPodAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.matchLabelKeys[0]: "app" is also in labelSelector (Kubernetes refuses the pod)`,
		`c.yaml:7:29: spec.imagePullSecrets[0].name: "Reg_Cred" is not a valid Secret name`,
		`c.yaml:7:40: spec.imagePullSecrets[1].name: required: the name of a Secret of type kubernetes.io/dockerconfigjson in the cluster's namespace`,
		`c.yaml:8:22: spec.priorityClassName: "High_Priority" is not a valid PriorityClass name`,
		`c.yaml:9:18: spec.schedulerName: "my scheduler" is not a valid scheduler name (a DNS subdomain, as Kubernetes requires)`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("errors\n%s\nwant\n%q", quoteLines(got), want)
	}
}

func quoteLines(s []string) string {
	out := ""
	for _, l := range s {
		out += "\t`" + l + "`,\n"
	}
	return out
}

// TestSchedulingCorpus: a file placing and pulling its pods as
// CloudNativePG's documentation does loads with every setting kept.
func TestSchedulingCorpus(t *testing.T) {
	for p, c := range loadEach(t, "testdata/cnpg/scheduling.yaml", 1) {
		s := c.Spec
		a := s.Affinity
		got := []any{s.ImagePullSecrets[0].Name, s.PriorityClassName, s.SchedulerName, *s.EphemeralVolumesSizeLimit.TemporaryData,
			s.TopologySpreadConstraints[0].LabelSelector.MatchLabels["pgsync.io/cluster"],
			a.NodeAffinity.Required.NodeSelectorTerms[0].MatchExpressions[0].Operator, a.NodeAffinity.Preferred[0].Weight,
			a.AdditionalPodAffinity.Preferred[0].PodAffinityTerm.TopologyKey,
			a.AdditionalPodAntiAffinity.Required[0].LabelSelector.MatchExpressions[0].Values[0]}
		want := []any{"registry-credentials", "postgres-critical", "my-scheduler", Quantity("1Gi"), "cluster-example",
			"Exists", 50, "topology.kubernetes.io/zone", "analytics"}
		if !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", p, got, want)
		}
	}
}

// TestSchedulingWarnsOfCNPGLabels: a spread constraint or an additional
// pod (anti-)affinity term selecting CloudNativePG's pod labels loads, with
// a warning at the label that it selects none of pgsync's pods.
func TestSchedulingWarnsOfCNPGLabels(t *testing.T) {
	doc := "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: pg, namespace: x}\nspec:\n  instances: 3\n  storage: {size: 1Gi}\n" +
		"  topologySpreadConstraints:\n    - {maxSkew: 1, topologyKey: zone, whenUnsatisfiable: ScheduleAnyway, labelSelector: {matchLabels: {cnpg.io/cluster: pg}}}\n" +
		"  affinity:\n    additionalPodAntiAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n" +
		"        - {topologyKey: zone, labelSelector: {matchExpressions: [{key: cnpg.io/instanceRole, operator: Exists}]}}\n" +
		"        - {topologyKey: zone, labelSelector: {matchLabels: {pgsync.io/cluster: pg}}}\n"
	set, errs := load(t, File{Path: "c.yaml", Data: []byte(doc)})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	var got []string
	for _, w := range set.Warnings {
		got = append(got, w.Pos.String()+": "+w.Field)
	}
	want := []string{"c.yaml:8:121: spec.topologySpreadConstraints[0].labelSelector.matchLabels.cnpg.io/cluster",
		"c.yaml:12:72: spec.affinity.additionalPodAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].labelSelector.matchExpressions[0].key"}
	if !slices.Equal(got, want) {
		t.Errorf("warnings %q, want %q", got, want)
	}
	if len(set.Warnings) > 0 && !strings.Contains(set.Warnings[0].Message, "pgsync.io/cluster: pg") {
		t.Errorf("warning %q does not say which label to select", set.Warnings[0].Message)
	}
}
