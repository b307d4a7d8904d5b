package podcontract

// PodMonitor is the cluster's PodMonitor (spec.monitoring.enablePodMonitor,
// the Prometheus Operator's kind), named as CloudNativePG names it.
func (n Names) PodMonitor() string { return n.Cluster }
