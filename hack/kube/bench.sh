#!/usr/bin/env bash
# Measures the local cluster for docs/benchmarks.md ("Local Kubernetes"):
# N warm `kubelocal up` runs (each after `kubelocal down`, binaries and images
# cached), the RSS of each component once the cluster is idle, and, in the
# same command, the baseline: a bare etcd + kube-apiserver start
# (test/kubeenv BenchmarkAPIServerStart). Leaves the cluster running.
# Usage: hack/kube/bench.sh [N]   (needs root; default N=5)
set -euo pipefail
N=${1:-5}
cd "$(dirname "$0")/../.."
KL=${PGSYNC_KUBE_CACHE:-/var/cache/pgsync/kube}/kubelocal
CGO_ENABLED=0 go build -trimpath -o "$KL" ./hack/kube/kubelocal

median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2}'; }

echo "== baseline: bare etcd + kube-apiserver start/stop, $N runs"
base=$(go test -run '^$' -bench BenchmarkAPIServerStart -benchtime "${N}x" -count 1 ./test/kubeenv |
	awk '/^BenchmarkAPIServerStart/ {printf "%.2f\n", $3/1e9}')
echo "baseline_s=$base"

ups=()
for i in $(seq "$N"); do
	"$KL" down >/dev/null 2>&1
	t0=$(date +%s.%N)
	"$KL" up >/dev/null 2>&1
	t1=$(date +%s.%N)
	ups+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}')")
	echo "warm kube-up run $i: ${ups[-1]} s"
done
med=$(printf '%s\n' "${ups[@]}" | median)
echo "warm_up_median_s=$med sorted: $(printf '%s\n' "${ups[@]}" | sort -n | tr '\n' ' ')"
echo "ratio_vs_baseline=$(awk -v m="$med" -v b="$base" 'BEGIN {printf "%.1f", m / b}')"
sleep 30
echo "== RSS 30 s after the last kube-up"
"$KL" status
