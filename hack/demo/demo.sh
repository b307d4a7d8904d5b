#!/usr/bin/env bash
# make demo: the local Kubernetes, a Git server on its node IP serving a
# copy of examples/local, pgsync deployed in-cluster from deploy/run
# (examples/demo), and the website cluster created by it. Idempotent: a
# second run keeps the repository and its history, and restarts only what
# is not running. State: /var/lib/pgsync/demo.
set -euo pipefail
cd "$(dirname "$0")/../.."
state=/var/lib/pgsync/demo
export KUBECONFIG=/var/lib/pgsync/kube/admin.kubeconfig
say() { printf 'demo: %s\n' "$*" >&2; }

# git serves the repository (git http-backend); kubectl applies
# examples/demo with its kustomize. A machine without them gets git from
# Debian and kubectl built from the Kubernetes sources make kube-up uses.
command -v git >/dev/null || hack/kube/deps.sh git
if ! command -v kubectl >/dev/null; then
  . hack/kube/versions.env
  bin=${PGSYNC_KUBE_CACHE:-/var/cache/pgsync/kube}/${PGSYNC_KUBE_VERSION:-$KUBE_VERSION}/bin
  [ -x "$bin/kubectl" ] || { say "no kubectl: building it (a few minutes, once)"; hack/kube/build.sh kubectl; }
  export PATH=$bin:$PATH
fi

node_ip=$(kubectl get nodes -o jsonpath='{.items[0].status.addresses[?(@.type=="InternalIP")].address}')
if [ "$node_ip" != 198.18.0.1 ]; then
  say "the node IP is $node_ip; examples/demo expects 198.18.0.1"; exit 1
fi

# The Git repository: bare on the server side, and the clone a user
# edits and pushes from.
mkdir -p "$state"
if [ ! -d "$state/fleet.git" ]; then
  say "creating the Git repository $state/fleet.git from examples/local"
  git init -q --bare -b main "$state/fleet.git"
  git -C "$state/fleet.git" config http.receivepack true
  rm -rf "$state/fleet"
  git init -q -b main "$state/fleet"
  # An identity of the clone's own, so the printed commit works on a
  # machine whose git has none.
  git -C "$state/fleet" config user.name "pgsync demo"
  git -C "$state/fleet" config user.email demo@pgsync.invalid
  cp -r examples/local/. "$state/fleet/"
  git -C "$state/fleet" add -A
  git -C "$state/fleet" commit -qm "website at PostgreSQL 15.18"
  git -C "$state/fleet" remote add origin "http://$node_ip:8418/fleet.git"
fi

# The Git server, a host process (it outlives this script).
go build -o "$state/gitserve" ./hack/demo/gitserve
if ! { [ -f "$state/gitserve.pid" ] && kill -0 "$(cat "$state/gitserve.pid")" 2>/dev/null; }; then
  say "starting the Git server on http://$node_ip:8418 (log: $state/gitserve.log)"
  setsid "$state/gitserve" -listen "$node_ip:8418" -root "$state" >>"$state/gitserve.log" 2>&1 < /dev/null &
  echo $! >"$state/gitserve.pid"
  for _ in $(seq 50); do git ls-remote "http://$node_ip:8418/fleet.git" >/dev/null 2>&1 && break; sleep 0.1; done
fi
git -C "$state/fleet" push -q -u origin main

say "deploying pgsync (kubectl apply -k examples/demo)"
kubectl apply -k examples/demo >/dev/null
kubectl -n pgsync rollout status deployment/pgsync --timeout=5m >&2

say "waiting for pgsync to create the website cluster (3 instances, one at a time)"
deadline=$((SECONDS + 600))
until [ "$(kubectl -n website get pods -l pgsync.io/cluster=website -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' 2>/dev/null | grep -c True)" = 3 ]; do
  if [ $SECONDS -gt $deadline ]; then
    say "the website cluster is not ready after 10 minutes; pgsync's log:"
    kubectl -n pgsync logs deployment/pgsync --tail=30 >&2 || true
    exit 1
  fi
  sleep 2
done
bin/pgsync status website/website >&2

cat <<EOM

The website cluster runs, created by pgsync from Git. Roll it to PostgreSQL 15.20:

  export KUBECONFIG=$KUBECONFIG
  cd $state/fleet && sed -i 's/15\.18/15.20/' clusters/website/website.yaml && git commit -qam "PostgreSQL 15.20" && git push -q
  $(pwd)/bin/pgsync status website/website -w

pgsync polls every 10 s; its log: kubectl -n pgsync logs deployment/pgsync -f
EOM
