#!/usr/bin/env bash
# make demo-clean: what make demo set up goes (the local Kubernetes stays;
# make kube-down stops it).
set -uo pipefail
cd "$(dirname "$0")/../.."
state=/var/lib/pgsync/demo
export KUBECONFIG=/var/lib/pgsync/kube/admin.kubeconfig
if [ -f "$state/gitserve.pid" ]; then kill "$(cat "$state/gitserve.pid")" 2>/dev/null; fi
kubectl delete -k examples/demo --ignore-not-found --wait=true >/dev/null 2>&1
kubectl delete namespace website --ignore-not-found --wait=true >/dev/null 2>&1
rm -rf "$state"
echo "demo: removed (the local Kubernetes still runs; make kube-down stops it)"
