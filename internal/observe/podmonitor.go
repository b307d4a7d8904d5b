package observe

import (
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/discovery"

	"github.com/pgsync/pgsync/internal/kube"
	"github.com/pgsync/pgsync/internal/plan"
)

// PodMonitorKind asks the API server's discovery whether it serves the
// Prometheus Operator's PodMonitor (its CRD installed and established):
// one GET of /apis/monitoring.coreos.com/v1, which discovery answers for
// every authenticated user. The shells ask only when a desired cluster
// has enablePodMonitor (plan.NeedsPodMonitor).
func PodMonitorKind(d discovery.DiscoveryInterface) plan.APIKind {
	list, err := d.ServerResourcesForGroupVersion(kube.PodMonitorKind.GroupVersion().String())
	switch {
	case apierrors.IsNotFound(err):
		return plan.APIKind{Checked: true}
	case err != nil:
		return plan.APIKind{Checked: true, Err: err.Error()}
	}
	for _, r := range list.APIResources {
		if r.Name == kube.PodMonitorResource.Resource && r.Kind == kube.PodMonitorKind.Kind {
			return plan.APIKind{Checked: true, Served: true}
		}
	}
	return plan.APIKind{Checked: true}
}
