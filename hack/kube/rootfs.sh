#!/usr/bin/env bash
# Builds the PostgreSQL operand root filesystems from Debian packages with
# debootstrap, into the cache outside the checkout:
#   $PGSYNC_KUBE_CACHE/images/rootfs/postgresql-<minor>/
# Usage: hack/kube/rootfs.sh 15.18|15.20 ...   Idempotent; needs root.
#
# 15.18 is the bookworm release, 15.20 comes from bookworm-security. Like
# CloudNativePG's images, the postgres user and group are uid/gid 26 (Debian's
# `tape` group owns gid 26 and moves to 126 first); PGDATA is
# /var/lib/postgresql/data/pgdata; no cluster is created.
set -euo pipefail
CACHE_ROOT=${PGSYNC_KUBE_CACHE:-/var/cache/pgsync/kube}
ROOTFS=$CACHE_ROOT/images/rootfs
MIRROR=${PGSYNC_DEBIAN_MIRROR:-$(sed -n 's/^URIs: *\(http[^ ]*\/debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY=${PGSYNC_DEBIAN_SECURITY_MIRROR:-${MIRROR}-security}

[ "$(id -u)" = 0 ] || { echo "rootfs.sh: needs root (debootstrap, chroot)" >&2; exit 1; }
mkdir -p "$ROOTFS"
exec 9>"$ROOTFS/.lock"
flock 9

base=$ROOTFS/.base-bookworm
if [ ! -f "$base/.ready" ]; then
	rm -rf "$base"
	echo "rootfs.sh: debootstrap bookworm from $MIRROR" >&2
	debootstrap --variant=minbase bookworm "$base" "$MIRROR" >"$ROOTFS/debootstrap.log" 2>&1 ||
		{ tail -20 "$ROOTFS/debootstrap.log" >&2; exit 1; }
	touch "$base/.ready"
fi

# in_chroot runs a command in the rootfs with /proc mounted for its duration.
in_chroot() {
	local root=$1; shift
	mount -t proc proc "$root/proc"
	local rc=0
	chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 "$@" || rc=$?
	umount "$root/proc"
	return $rc
}

for minor in "$@"; do
	case $minor in
	15.18) suites="bookworm" ;;
	15.20) suites="bookworm bookworm-security" ;;
	*) echo "rootfs.sh: unknown PostgreSQL version $minor (15.18 or 15.20)" >&2; exit 2 ;;
	esac
	dst=$ROOTFS/postgresql-$minor
	[ -f "$dst/.ready" ] && continue
	echo "rootfs.sh: building postgresql-$minor" >&2
	rm -rf "$dst" "$dst.tmp"
	cp -a "$base" "$dst.tmp"
	rm -f "$dst.tmp/.ready"
	{
		echo "deb $MIRROR bookworm main"
		case $suites in *security*) echo "deb $SECURITY bookworm-security main" ;; esac
	} >"$dst.tmp/etc/apt/sources.list"
	printf '#!/bin/sh\nexit 101\n' >"$dst.tmp/usr/sbin/policy-rc.d"
	chmod +x "$dst.tmp/usr/sbin/policy-rc.d"
	mkdir -p "$dst.tmp/etc/postgresql-common"
	echo "create_main_cluster = false" >"$dst.tmp/etc/postgresql-common/createcluster.conf"
	in_chroot "$dst.tmp" sh -euc '
		groupmod -g 126 tape
		groupadd -g 26 postgres
		useradd -u 26 -g 26 -d /var/lib/postgresql -s /bin/bash -c "PostgreSQL administrator" postgres
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends postgresql-15='"$minor"'-0+deb12u1 postgresql-client-15='"$minor"'-0+deb12u1 libpq5 >/dev/null
		mkdir -p /var/lib/postgresql/data /var/run/postgresql
		chown -R 26:26 /var/lib/postgresql /var/run/postgresql
		chmod 2775 /var/run/postgresql
		apt-get clean
		rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/*.log /var/log/apt/*
	' >"$ROOTFS/postgresql-$minor.log" 2>&1 || { tail -20 "$ROOTFS/postgresql-$minor.log" >&2; exit 1; }
	rm -f "$dst.tmp/usr/sbin/policy-rc.d"
	got=$(chroot "$dst.tmp" /usr/lib/postgresql/15/bin/postgres --version)
	case $got in *" $minor"*) ;; *) echo "rootfs.sh: expected PostgreSQL $minor, got: $got" >&2; exit 1 ;; esac
	[ "$(chroot "$dst.tmp" id -u postgres):$(chroot "$dst.tmp" id -g postgres)" = "26:26" ] ||
		{ echo "rootfs.sh: postgres is not uid/gid 26" >&2; exit 1; }
	touch "$dst.tmp/.ready"
	mv "$dst.tmp" "$dst"
	echo "rootfs.sh: $got" >&2
done
