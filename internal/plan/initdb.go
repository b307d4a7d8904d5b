package plan

import (
	"reflect"

	"github.com/pgsync/pgsync/internal/cluster"
)

// initdbRefusals refuses a spec.bootstrap.initdb change on a running
// cluster: initdb and the post-init SQL ran once, when the first primary
// bootstrapped, so a new value could never take effect; planning it
// (the pod template changes) would restart every instance for nothing and
// leave Git saying what the database is not.
func initdbRefusals(d *cluster.Cluster, o *ObservedCluster) []cluster.Diagnostic {
	var before, after *cluster.BootstrapInitDB
	if b := o.Spec.Spec.Bootstrap; b != nil {
		before = b.InitDB
	}
	if b := d.Spec.Bootstrap; b != nil {
		after = b.InitDB
	}
	if reflect.DeepEqual(before, after) {
		return nil
	}
	const f = "spec.bootstrap.initdb"
	return []cluster.Diagnostic{{Pos: d.Pos(f), Field: f,
		Message: "refused: bootstrap settings take effect once, when the first primary runs initdb; this cluster was bootstrapped with others, which it keeps (put them back as they were, or create a new cluster)"}}
}
