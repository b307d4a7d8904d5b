#!/usr/bin/env bash
# Builds the Kubernetes components pgsync's tests and demo run, from the Go
# module proxy, into a cache outside the checkout keyed by version:
#   $PGSYNC_KUBE_CACHE/$KUBE_VERSION/bin/{kube-apiserver,...}
# and CoreDNS (with its kubernetes plugin) into
#   $PGSYNC_KUBE_CACHE/coredns-$COREDNS_VERSION/coredns
# and the NetworkPolicy agent sigs.k8s.io/kube-network-policies into
#   $PGSYNC_KUBE_CACHE/kube-network-policies-$KNP_VERSION/kube-network-policies
# Usage: hack/kube/build.sh [component...]   (default: the five below)
# Components: kube-apiserver kube-controller-manager kube-scheduler kubelet
#             kube-proxy coredns kube-network-policies, and kubectl (only
#             when asked: make demo builds it on a machine without one).
#             Idempotent: a binary in the cache is kept.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"
KUBE_VERSION=${PGSYNC_KUBE_VERSION:-$KUBE_VERSION}
CACHE_ROOT=${PGSYNC_KUBE_CACHE:-/var/cache/pgsync/kube}
CACHE=$CACHE_ROOT/$KUBE_VERSION
SRC=$CACHE/src
BIN=$CACHE/bin
ALL=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)
KNOWN=("${ALL[@]}" kubectl)

want=("$@")
[ ${#want[@]} -gt 0 ] || want=("${ALL[@]}")

# The build modules live in the cache, never in the checkout, and do not
# inherit the caller's module settings.
export GOFLAGS=-mod=mod GOWORK=off CGO_ENABLED=0
unset GOOS GOARCH

if [ "${want[*]}" = coredns ]; then
	dir=$CACHE_ROOT/coredns-$COREDNS_VERSION
	[ -x "$dir/coredns" ] && exit 0
	mkdir -p "$dir/src"
	exec 9>"$dir/.build.lock"
	flock 9
	[ -x "$dir/coredns" ] && exit 0
	cd "$dir/src"
	[ -f go.mod ] || printf 'module pgsync.local/coredns-build\n\ngo 1.26.0\n' >go.mod
	echo "build.sh: building coredns $COREDNS_VERSION" >&2
	start=$(date +%s)
	go get "github.com/coredns/coredns@$COREDNS_VERSION"
	nice -n 10 go build -trimpath -ldflags "-s -w" -o "$dir/coredns.tmp" github.com/coredns/coredns
	mv -f "$dir/coredns.tmp" "$dir/coredns"
	echo "build.sh: built coredns in $(( $(date +%s) - start )) s" >&2
	exit 0
fi

if [ "${want[*]}" = kube-network-policies ]; then
	dir=$CACHE_ROOT/kube-network-policies-$KNP_VERSION
	[ -x "$dir/kube-network-policies" ] && exit 0
	mkdir -p "$dir"
	exec 9>"$dir/.build.lock"
	flock 9
	[ -x "$dir/kube-network-policies" ] && exit 0
	echo "build.sh: building kube-network-policies $KNP_VERSION" >&2
	start=$(date +%s)
	modDir=$(go mod download -json "sigs.k8s.io/kube-network-policies@$KNP_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
	[ -d "$modDir" ] || { echo "build.sh: could not download sigs.k8s.io/kube-network-policies@$KNP_VERSION" >&2; exit 1; }
	rm -rf "$dir/src"
	cp -r "$modDir" "$dir/src"
	chmod -R u+w "$dir/src"
	# The agent sends the packets of new connections to user space with
	# nftables' native `queue` expression, which needs CONFIG_NFT_QUEUE;
	# the kernels of these machines are built without it (and without
	# module loading), but with nft_compat and the x_tables NFQUEUE target
	# (what iptables-nft uses). knp-nfqueue.go.in substitutes that target.
	cp "$here/knp-nfqueue.go.in" "$dir/src/pkg/networkpolicy/zz_pgsync_nfqueue.go"
	sed -i -e 's/queue := &expr.Queue{Num: uint16(c.config.QueueID)}/queue := xtNFQueue(uint16(c.config.QueueID), c.config.FailOpen)/' \
		-e 's/^\([[:space:]]*\)queue.Flag = expr.QueueFlagBypass$/\1_ = queue \/\/ bypass: set by xtNFQueue/' \
		-e 's/&expr.Queue{Num: uint16(n.nfQueueID), Flag: expr.QueueFlagBypass}/xtNFQueue(uint16(n.nfQueueID), true)/' \
		"$dir/src/pkg/networkpolicy/controller.go" "$dir/src/pkg/networkpolicy/dnsagent.go"
	# It reads only the in-cluster configuration (a pod's); as a host
	# process of kube-up it reads the kubeconfig that $KUBECONFIG names
	# (clientcmd falls back to the in-cluster configuration without one).
	sed -i -e 's/config, err := rest.InClusterConfig()/config, err := clientcmd.BuildConfigFromFlags("", os.Getenv("KUBECONFIG"))/' \
		-e 's#^\([[:space:]]*\)"k8s.io/client-go/rest"$#\1"k8s.io/client-go/tools/clientcmd"#' "$dir/src/cmd/main.go"
	if grep -q 'expr.Queue{' "$dir/src/pkg/networkpolicy/"*.go || grep -q 'InClusterConfig' "$dir/src/cmd/main.go"; then
		echo "build.sh: kube-network-policies $KNP_VERSION: the nfqueue or kubeconfig substitution no longer matches its source" >&2
		exit 1
	fi
	(cd "$dir/src" && nice -n 10 go build -trimpath -ldflags "-s -w" -o "$dir/kube-network-policies.tmp" ./cmd)
	mv -f "$dir/kube-network-policies.tmp" "$dir/kube-network-policies"
	echo "build.sh: built kube-network-policies in $(( $(date +%s) - start )) s" >&2
	exit 0
fi

mkdir -p "$CACHE" "$BIN"
# One builder at a time (parallel test processes may all ask for a build).
exec 9>"$CACHE/.build.lock"
flock 9

missing=()
for c in "${want[@]}"; do
	case " ${KNOWN[*]} " in *" $c "*) ;; *) echo "build.sh: unknown component $c" >&2; exit 2 ;; esac
	[ -x "$BIN/$c" ] || missing+=("$c")
done
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

ver=${KUBE_VERSION#v}
major=${ver%%.*}
rest=${ver#*.}
minor=${rest%%.*}
staging=v0.${rest}

if [ ! -f "$SRC/.ready" ]; then
	rm -rf "$SRC"
	mkdir -p "$SRC"
	cd "$SRC"
	printf 'module pgsync.local/kube-build\n\ngo 1.26.0\n' >go.mod
	echo "build.sh: fetching k8s.io/kubernetes@$KUBE_VERSION" >&2
	gomod=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
	[ -f "$gomod" ] || { echo "build.sh: could not download k8s.io/kubernetes@$KUBE_VERSION" >&2; exit 1; }
	# kubernetes' go.mod points every staging repository at ./staging/...;
	# the same repositories are published as k8s.io/<repo> v0.<minor>.<patch>.
	repos=$(sed -n 's#^[[:space:]]*\(k8s\.io/[^[:space:]]*\) => \./staging/src/.*#\1#p' "$gomod" | sort -u)
	n=0
	for r in $repos; do
		printf 'replace %s => %s %s\n' "$r" "$r" "$staging" >>go.mod
		n=$((n + 1))
	done
	[ "$n" -gt 0 ] || { echo "build.sh: no staging replace lines found in $gomod" >&2; exit 1; }
	echo "build.sh: $n staging repositories pinned at $staging" >&2
	go get "k8s.io/kubernetes@$KUBE_VERSION"
	touch .ready
fi
cd "$SRC"

pkgs=()
for c in "${missing[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
ldflags="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	ldflags+=" -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=$major -X $p.gitMinor=$minor"
	ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=$date"
done

tmp=$(mktemp -d "$CACHE/bin.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "build.sh: building ${missing[*]} ($KUBE_VERSION)" >&2
start=$(date +%s)
nice -n 10 go build -trimpath -ldflags "$ldflags" -o "$tmp/" "${pkgs[@]}"
for c in "${missing[@]}"; do mv -f "$tmp/$c" "$BIN/$c"; done
echo "build.sh: built ${missing[*]} in $(( $(date +%s) - start )) s" >&2
