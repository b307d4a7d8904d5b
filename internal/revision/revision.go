package revision

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"
	"strconv"
	"strings"

	"github.com/pgsync/pgsync/internal/cluster"
)

// Version prefixes every revision. Changing how an existing field is
// encoded needs a new version (docs/revisions.md); adding a field omitted
// at its default does not.
const Version = "v1"

// Restart identifies what an instance's postgres process was started with
// that only a restart can change: the image, the restart-only parameters,
// resources and placement. Two specs with the same Restart revision need no
// restart between them.
func Restart(c *cluster.Cluster) string { return hash(restartFields(c)) }

// Config identifies the configuration an instance applies by reloading:
// the reload-only parameters and the pg_hba rules.
func Config(c *cluster.Cluster) string { return hash(configFields(c)) }

// restartFields is the v1 encoding of Restart. Every field but the image
// is omitted at its default.
func restartFields(c *cluster.Cluster) []string {
	var f fields
	s := &c.Spec
	f.add("image", s.ImageName)
	f.addMap("parameters", RestartParameters(c))
	f.addMap("resources.requests", quantities(s.Resources.Requests))
	f.addMap("resources.limits", quantities(s.Resources.Limits))
	a := s.Affinity
	if a.EnablePodAntiAffinity != nil && !*a.EnablePodAntiAffinity {
		f.add("affinity.enablePodAntiAffinity", "false")
	}
	f.addUnlessDefault("affinity.topologyKey", a.TopologyKey, cluster.DefaultTopologyKey)
	f.addUnlessDefault("affinity.podAntiAffinityType", a.PodAntiAffinityType, cluster.DefaultPodAntiAffinityType)
	f.addMap("affinity.nodeSelector", a.NodeSelector)
	for i, t := range a.Tolerations {
		// In order: Kubernetes keeps the pod's tolerations as listed.
		p := "affinity.tolerations[" + strconv.Itoa(i) + "]."
		f.addUnlessDefault(p+"key", t.Key, "")
		f.addUnlessDefault(p+"operator", t.Operator, "Equal")
		f.addUnlessDefault(p+"value", t.Value, "")
		f.addUnlessDefault(p+"effect", t.Effect, "")
		if t.TolerationSeconds != nil {
			f.add(p+"tolerationSeconds", strconv.Itoa(*t.TolerationSeconds))
		}
	}
	// The metrics endpoint is a manager flag and a container port: only
	// a restart changes them. Omitted when spec.monitoring is not set.
	if s.MetricsOn() {
		f.add("monitoring", "on")
		if !s.DefaultQueries() {
			f.add("monitoring.disableDefaultQueries", "true")
		}
		// The custom queries' objects are projected into the pods and
		// named on the manager's command line: naming another is a
		// restart (their content is read at every scrape: none).
		m := s.Monitoring
		for i, r := range m.CustomQueriesConfigMap {
			f.add("monitoring.customQueriesConfigMap["+strconv.Itoa(i)+"]", r.Name+"/"+r.Key)
		}
		for i, r := range m.CustomQueriesSecret {
			f.add("monitoring.customQueriesSecret["+strconv.Itoa(i)+"]", r.Name+"/"+r.Key)
		}
		if s.MetricsTLS() {
			f.add("monitoring.tls.enabled", "true")
		}
	}
	// The server certificates' extra names reach the managers in their
	// environment: a restart. Omitted when not set.
	for i, n := range c.ServerAltDNSNames() {
		f.add("certificates.serverAltDNSNames["+strconv.Itoa(i)+"]", n)
	}
	// Secrets of the user's are projected into the pods: a Secret newly
	// named is mounted by a restart (a change of its content is taken by
	// reload). Omitted when not set.
	k := c.UserCertificates()
	f.addUnlessDefault("certificates.serverCASecret", k.ServerCASecret, "")
	f.addUnlessDefault("certificates.serverTLSSecret", k.ServerTLSSecret, "")
	f.addUnlessDefault("certificates.clientCASecret", k.ClientCASecret, "")
	f.addUnlessDefault("certificates.replicationTLSSecret", k.ReplicationTLSSecret, "")
	// The managed roles' password Secrets are projected into the pods: a
	// Secret newly named is mounted by a restart. Omitted when none.
	for i, s := range c.Spec.RolePasswordSecrets() {
		f.add("managed.roles.passwordSecrets["+strconv.Itoa(i)+"]", s)
	}
	// The superuser's Secret of the user's is projected into the pods
	// too. Omitted when not written (NAME-superuser).
	f.addUnlessDefault("superuserSecret", c.Spec.SuperuserSecretName(), "")
	addScheduling(&f, &c.Spec)
	return f.lines
}

// configFields is the v1 encoding of Config.
func configFields(c *cluster.Cluster) []string {
	var f fields
	f.addMap("parameters", reloadParameters(c))
	for i, line := range c.Spec.PostgreSQL.PgHBA {
		f.add("pg_hba["+strconv.Itoa(i)+"]", line)
	}
	// Synchronous replication is applied by reloading the primary
	// (synchronous_standby_names); omitted when off.
	if y := c.Spec.PostgreSQL.Synchronous; y != nil {
		f.add("synchronous.method", y.Method)
		f.add("synchronous.number", strconv.Itoa(y.Number))
		if y.MaxStandbyNamesFromCluster != nil {
			f.add("synchronous.maxStandbyNamesFromCluster", strconv.Itoa(*y.MaxStandbyNamesFromCluster))
		}
		for i, n := range y.StandbyNamesPre {
			f.add("synchronous.standbyNamesPre["+strconv.Itoa(i)+"]", n)
		}
		for i, n := range y.StandbyNamesPost {
			f.add("synchronous.standbyNamesPost["+strconv.Itoa(i)+"]", n)
		}
		f.addUnlessDefault("synchronous.dataDurability", y.DataDurability, "required")
	}
	// Replication slots are applied by the managers from the ConfigMap
	// (a reload for primary_slot_name); each omitted at its default.
	if s := &c.Spec; s.ReplicationSlots != nil {
		if !s.HASlots() {
			f.add("replicationSlots.highAvailability.enabled", "false")
		}
		f.addUnlessDefault("replicationSlots.highAvailability.slotPrefix", s.SlotPrefix(), cluster.DefaultSlotPrefix)
		f.addUnlessDefault("replicationSlots.updateInterval", strconv.Itoa(s.SlotUpdateInterval()), strconv.Itoa(cluster.DefaultSlotUpdateIntervalSecs))
		if !s.SynchronizeUserSlots() {
			f.add("replicationSlots.synchronizeReplicas.enabled", "false")
		}
		if y := s.ReplicationSlots.SynchronizeReplicas; y != nil {
			for i, p := range y.ExcludePatterns {
				f.add("replicationSlots.synchronizeReplicas.excludePatterns["+strconv.Itoa(i)+"]", p)
			}
		}
	}
	if s := c.Spec; s.MaxSyncReplicas > 0 {
		f.add("maxSyncReplicas", strconv.Itoa(s.MaxSyncReplicas))
		f.addUnlessDefault("minSyncReplicas", strconv.Itoa(s.MinSyncReplicas), "0")
	}
	// The superuser's access reaches the managers with the ConfigMap:
	// the primary's sets or removes its password, every one renders
	// pg_hba. Omitted at the default, off.
	if c.Spec.SuperuserAccess() {
		f.add("enableSuperuserAccess", "true")
	}
	// Managed roles reach the primary with the ConfigMap (no restart);
	// each entry is one line, its JSON, in order. Omitted when none.
	for i, r := range c.Spec.ManagedRoles() {
		if r.PasswordSecret != nil {
			// Its name is in the restart revision (the pods mount it):
			// here only that there is one.
			r.PasswordSecret = &cluster.LocalObjectReference{}
		}
		raw, _ := json.Marshal(r) // strings, bools, ints: cannot fail
		f.add("managed.roles["+strconv.Itoa(i)+"]", string(raw))
	}
	return f.lines
}

// fields collects the encoding: one line per field, name=value, the value
// quoted so that no value can end a line or forge another field.
type fields struct{ lines []string }

func (f *fields) add(name, value string) {
	f.lines = append(f.lines, name+"="+strconv.Quote(value))
}

// addUnlessDefault omits a value that is empty or the default, so an
// explicitly written default and an omitted one hash the same.
func (f *fields) addUnlessDefault(name, value, def string) {
	if value != "" && value != def {
		f.add(name, value)
	}
}

// addMap adds one line per key, sorted; a nil and an empty map add nothing.
func (f *fields) addMap(name string, m map[string]string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		f.add(name+"["+strconv.Quote(k)+"]", m[k])
	}
}

func hash(lines []string) string {
	sum := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	return Version + "-" + hex.EncodeToString(sum[:6])
}

// quantities canonicalises resource quantities by value, so 1Gi and 1024Mi
// (or 0.5 and 500m) are the same resources.
func quantities(m map[string]cluster.Quantity) map[string]string {
	out := make(map[string]string, len(m))
	for k, q := range m {
		out[k] = canonical(q)
	}
	return out
}

// canonical is the exact decimal value of q without trailing fractional
// zeros ("1073741824", "0.5"); a quantity that does not parse (only one
// built by hand: decoding rejects them) stays as written.
func canonical(q cluster.Quantity) string {
	v, err := q.Parse()
	if err != nil {
		return string(q)
	}
	s := v.AsDec().String()
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}
