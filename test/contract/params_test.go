package contract

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/instance/conffile"
	"github.com/pgsync/pgsync/internal/plan"
)

// TestManagedParametersRefused: every parameter the instance manager sets
// itself (and so would ignore in the Cluster's) is refused by validate, so
// no accepted parameter silently has no effect (a cluster setting one
// would also never publish its config revision).
func TestManagedParametersRefused(t *testing.T) {
	for _, name := range conffile.FixedNames() {
		y := fmt.Sprintf("apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata:\n  name: pg\n  namespace: x\nspec:\n  imageName: localhost:5000/postgresql:15.18\n  instances: 1\n  storage:\n    size: 1Gi\n  postgresql:\n    parameters:\n      %s: \"1\"\n", name)
		set, err := cluster.Load([]cluster.File{{Path: "pg.yaml", Data: []byte(y)}})
		if err != nil {
			t.Fatalf("%s: load: %v", name, err)
		}
		_, problems := plan.CheckParameters(set.Clusters[0])
		if len(problems) == 0 || !strings.Contains(problems[0].Message, "managed by pgsync") {
			t.Errorf("%s is set by the instance manager but validate accepts it (problems %v)", name, problems)
		}
	}
}
