// Package fleet measures `pgsync run` over 1,000 clusters in Git against
// one API server (issue 9): the daemon's RSS, its CPU while nothing new is
// committed, the duration of such an idle cycle, that an idle cycle
// decodes no YAML, and what re-planning one changed cluster costs.
//
// The API server is test/kubeenv's (etcd + kube-apiserver only); what it
// lacks is played as test/podsim does for the observe benchmark: the
// pods, their status, claims, Lease holders and every instance's /status,
// served on the pod IPs (distinct 127.x.y.z addresses) at the real
// podcontract.HTTPPort, since the daemon dials that port.
//
//	go test -run '^$' -bench Fleet -benchtime=1x -timeout 60m ./bench/fleet
//
// BENCH_FLEET_CLUSTERS (1000), BENCH_FLEET_IDLE (60s, one CPU window) and
// BENCH_FLEET_WINDOWS (3) size it. BENCH_FLEET_KEEP_LOG keeps the daemon's
// log (JSON and gctrace lines), BENCH_FLEET_STARTUP_PROFILES=DIR saves its
// heap profile every 100 ms of the warm-up, BENCH_FLEET_GOMEMLIMIT sets
// its soft memory limit.
//
// It must not import `internal/daemon` or `cmd/...`: the daemon is measured
// as the shipped binary, from outside.
package fleet
