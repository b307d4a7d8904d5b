#!/usr/bin/env bash
# Installs the Debian packages the local Kubernetes needs, when missing.
# Idempotent; needs root. Services the packages ship are never started
# (policy-rc.d denies it): hack/kube runs its own containerd and etcd.
set -euo pipefail
pkgs=(containerd runc containernetworking-plugins iptables nftables etcd-server debootstrap iproute2 kmod util-linux)
[ $# -gt 0 ] && pkgs=("$@")
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "deps.sh: missing packages ${missing[*]}; run as root to install them" >&2
	exit 1
fi
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# A package whose service would start (containerd, etcd) must not: the
# cluster runs its own instances with its own configuration.
restore=
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod +x /usr/sbin/policy-rc.d
	restore=1
fi
trap '[ -n "$restore" ] && rm -f /usr/sbin/policy-rc.d' EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
