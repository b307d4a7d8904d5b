package apply

import (
	"strings"
	"testing"

	"github.com/pgsync/pgsync/internal/observe"
	"github.com/pgsync/pgsync/internal/plan"
	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// TestSwitchoverRefusal: the live preconditions of a switchover, each
// refusal saying why.
func TestSwitchoverRefusal(t *testing.T) {
	live := func(edit func(c *observe.Cluster)) *observe.Cluster {
		c := &observe.Cluster{LeaseHolder: "web-0", TargetPrimary: "web-0",
			Observed: plan.ObservedCluster{Primary: 0}}
		for i, n := range []string{"web-0", "web-1", "web-2"} {
			role := pc.StatusStandby
			if i == 0 {
				role = pc.StatusPrimary
			}
			c.Instances = append(c.Instances, observe.Instance{Name: n, Ordinal: i, Ready: true,
				Status: &pc.Status{Role: role, Streaming: i > 0}})
			c.Observed.Instances = append(c.Observed.Instances, plan.ObservedInstance{Ordinal: i, Ready: true})
		}
		if edit != nil {
			edit(c)
		}
		return c
	}
	for _, tc := range []struct {
		name string
		live *observe.Cluster
		to   string
		want string // "" for no refusal
	}{
		{"a streaming standby", live(nil), "web-1", ""},
		{"done already", live(func(c *observe.Cluster) { c.LeaseHolder, c.TargetPrimary = "web-1", "web-1" }), "web-1", ""},
		{"another primary", live(func(c *observe.Cluster) { c.LeaseHolder, c.TargetPrimary = "web-2", "web-2" }), "web-1", "the primary is web-2"},
		{"not ready", live(func(c *observe.Cluster) {
			c.Instances[1].Ready, c.Instances[1].NotReady = false, "pod is being deleted"
		}), "web-1", "web-1 is not ready (pod is being deleted)"},
		{"not streaming", live(func(c *observe.Cluster) { c.Instances[1].Status.Streaming = false }), "web-1", "not a streaming standby"},
		{"too far behind", live(func(c *observe.Cluster) { c.Instances[1].LagBytes = MaxSwitchoverLagBytes + 1 }), "web-1", "bytes behind the primary"},
		{"missing", live(nil), "web-3", "web-3 does not run"},
		{"synchronous: listed", live(func(c *observe.Cluster) {
			c.Observed.SyncRestricted, c.Observed.Instances[1].SyncListed = true, true
		}), "web-1", ""},
		{"synchronous: not listed, another is", live(func(c *observe.Cluster) {
			c.Observed.SyncRestricted, c.Observed.Instances[2].SyncListed = true, true
		}), "web-1", "does not list web-1 in synchronous_standby_names (ready and listed: ordinals [2])"},
		{"synchronous: the listed one is not ready", live(func(c *observe.Cluster) {
			c.Observed.SyncRestricted, c.Observed.Instances[2].SyncListed, c.Observed.Instances[2].Ready = true, true, false
		}), "web-1", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := switchoverRefusal(tc.live, "web-0", tc.to)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("got %v, want a refusal saying %q", err, tc.want)
			}
		})
	}
}
