#!/usr/bin/env bash
# Builds the PostgreSQL operand root filesystems from Debian packages with
# debootstrap and apt, into the cache outside the checkout:
#   $PGSYNC_KUBE_CACHE/images/rootfs/postgresql-<minor>/
# exactly the packages hack/kube/debian.lock lists for <minor> (version and
# the .deb's SHA-256 checked), normalised so that the same lock gives the
# same tree (docs/supply-chain.md, "How the images are built").
#
# Usage: hack/kube/rootfs.sh 15.18|15.20 ...         build (idempotent; a
#            tree built from another lock is rebuilt)
#        hack/kube/rootfs.sh --lock 15.18 15.20      resolve the packages
#            against today's mirror and print a new lock on stdout
# Needs root (debootstrap, chroot).
#
# 15.18 is the bookworm release, 15.20 comes from bookworm-security. Like
# CloudNativePG's images, the postgres user and group are uid/gid 26 (Debian's
# `tape` group owns gid 26 and moves to 126 first); PGDATA is
# /var/lib/postgresql/data/pgdata; no cluster is created.
set -euo pipefail
export LC_ALL=C # sort's order is the lock's (and kubelocal's) byte order
here=$(cd "$(dirname "$0")" && pwd)
LOCK=${PGSYNC_DEBIAN_LOCK:-$here/debian.lock}
CACHE_ROOT=${PGSYNC_KUBE_CACHE:-/var/cache/pgsync/kube}
ROOTFS=$CACHE_ROOT/images/rootfs
# Verified .deb files, kept across builds: a rebuild downloads nothing.
DEBS=$CACHE_ROOT/images/debs
MIRROR=${PGSYNC_DEBIAN_MIRROR:-$(sed -n 's/^URIs: *\(http[^ ]*\/debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY=${PGSYNC_DEBIAN_SECURITY_MIRROR:-${MIRROR}-security}

mode=build
if [ "${1:-}" = --lock ]; then
	mode=lock
	shift
fi

[ "$(id -u)" = 0 ] || { echo "rootfs.sh: needs root (debootstrap, chroot)" >&2; exit 1; }
mkdir -p "$ROOTFS" "$DEBS"
exec 9>"$ROOTFS/.lock"
flock 9

# The lock's fixed time (SOURCE_DATE_EPOCH overrides it): every date the
# build writes (the shadow file's last-change days) is this one, and the
# image's layer clamps file times to it.
if [ "$mode" = build ]; then
	[ -f "$LOCK" ] || { echo "rootfs.sh: no lock file $LOCK (write one with --lock)" >&2; exit 1; }
	epoch=${SOURCE_DATE_EPOCH:-$(awk '$1=="epoch" {print $2}' "$LOCK")}
else
	epoch=${SOURCE_DATE_EPOCH:-$(date -u -d "$(date -u +%F)" +%s)}
fi
case $epoch in '' | *[!0-9]*) echo "rootfs.sh: no valid epoch (in $LOCK or SOURCE_DATE_EPOCH)" >&2; exit 1 ;; esac

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
	chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 \
		SOURCE_DATE_EPOCH="$epoch" "$@" || rc=$?
	umount "$root/proc"
	return $rc
}

# lock_of prints the lock lines of one minor: PACKAGE VERSION ARCH SHA256.
lock_of() { awk -v m="$1" '$1==m {print $2, $3, $4, $5}' "$LOCK" | sort; }

# deb_file is the file name apt gives a package's archive (an epoch's ':'
# is written %3a).
deb_file() { printf '%s_%s_%s.deb' "$1" "${2//:/%3a}" "$3"; }

# normalise removes what differs between two builds of the same packages
# or comes from the build host: logs, caches, backups, the host's name
# and resolver, ssl-cert's freshly generated snakeoil key pair (a private
# key must not be baked into an image), and the install date in the
# shadow file.
normalise() {
	local r=$1
	rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/* "$r"/var/cache/ldconfig/aux-cache \
		"$r"/var/log/*.log "$r"/var/log/apt/* "$r"/var/cache/debconf/*-old "$r"/var/lib/dpkg/*-old \
		"$r"/etc/passwd- "$r"/etc/group- "$r"/etc/shadow- "$r"/etc/gshadow- "$r"/etc/subuid- "$r"/etc/subgid- \
		"$r"/etc/ssl/private/ssl-cert-snakeoil.key "$r"/etc/ssl/certs/ssl-cert-snakeoil.pem \
		"$r"/var/lib/dpkg/lock* "$r"/var/lib/apt/lists/lock "$r"/var/cache/apt/archives/lock \
		"$r"/etc/machine-id "$r"/var/lib/dbus/machine-id
	# ucf records the temporary file of its last prompt.
	sed -i 's|^\( NEW = /tmp/[A-Za-z0-9-]*\)\.[A-Za-z0-9]\{6\}$|\1.XXXXXX|' "$r/var/cache/debconf/config.dat"
	: >"$r/etc/resolv.conf"
	echo localhost >"$r/etc/hostname"
	{
		echo "deb http://deb.debian.org/debian bookworm main"
		case $2 in *security*) echo "deb http://deb.debian.org/debian-security bookworm-security main" ;; esac
	} >"$r/etc/apt/sources.list"
	local days=$((epoch / 86400))
	awk -F: -v OFS=: -v d="$days" '$3 != "" {$3 = d} {print}' "$r/etc/shadow" >"$r/etc/shadow.new"
	chmod --reference="$r/etc/shadow" "$r/etc/shadow.new"
	chown --reference="$r/etc/shadow" "$r/etc/shadow.new"
	mv "$r/etc/shadow.new" "$r/etc/shadow"
}

for minor in "$@"; do
	case $minor in
	15.18) suites="bookworm" ;;
	15.20) suites="bookworm bookworm-security" ;;
	*) echo "rootfs.sh: unknown PostgreSQL version $minor (15.18 or 15.20)" >&2; exit 2 ;;
	esac
	dst=$ROOTFS/postgresql-$minor
	if [ "$mode" = build ]; then
		want=$(lock_of "$minor")
		[ -n "$want" ] || { echo "rootfs.sh: $LOCK lists no packages for $minor" >&2; exit 1; }
		key=$( (echo "epoch $epoch"; echo "$want") | sha256sum | cut -d' ' -f1)
		[ -f "$dst/.ready" ] && [ "$(cat "$dst/.ready")" = "$key" ] && continue
	else
		dst=$ROOTFS/lock-$minor
	fi
	echo "rootfs.sh: building postgresql-$minor ($mode)" >&2
	rm -rf "$dst.tmp"
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
	log=$ROOTFS/postgresql-$minor.log
	in_chroot "$dst.tmp" sh -euc '
		groupmod -g 126 tape
		groupadd -g 26 postgres
		useradd -u 26 -g 26 -d /var/lib/postgresql -s /bin/bash -c "PostgreSQL administrator" postgres
		apt-get update -qq
	' >"$log" 2>&1 || { tail -20 "$log" >&2; exit 1; }
	if [ "$mode" = lock ]; then
		in_chroot "$dst.tmp" sh -euc '
			apt-get install -y -qq --no-install-recommends postgresql-15='"$minor"'-0+deb12u1 postgresql-client-15='"$minor"'-0+deb12u1 libpq5 >/dev/null
		' >>"$log" 2>&1 || { tail -20 "$log" >&2; exit 1; }
		# Every installed package with the SHA-256 of its archive, from the
		# mirror's (signed) index.
		in_chroot "$dst.tmp" sh -euc '
			dpkg-query -W -f="\${Package} \${Version} \${Architecture}\n" | sort | while read -r p v a; do
				s=$(apt-cache show "$p=$v" | sed -n "s/^SHA256: //p" | head -1)
				[ -n "$s" ] || { echo "no SHA256 for $p=$v in the mirror index" >&2; exit 1; }
				echo "'"$minor"' $p $v $a $s"
			done
		' >"$ROOTFS/lock-$minor.lines" 2>>"$log" || { tail -20 "$log" >&2; exit 1; }
		rm -rf "$dst.tmp"
		continue
	fi
	# Exactly the locked versions: downloaded (from the cache when there),
	# each archive's SHA-256 checked against the lock, then installed.
	pins=$(echo "$want" | awk '{print $1 "=" $2}')
	mkdir -p "$dst.tmp/var/cache/apt/archives"
	while read -r p v a s; do
		f=$(deb_file "$p" "$v" "$a")
		[ -f "$DEBS/$f" ] && cp "$DEBS/$f" "$dst.tmp/var/cache/apt/archives/$f"
	done <<<"$want"
	# shellcheck disable=SC2086
	in_chroot "$dst.tmp" apt-get install -y -qq --download-only --reinstall --allow-downgrades --no-install-recommends $pins >>"$log" 2>&1 ||
		{ tail -20 "$log" >&2; echo "rootfs.sh: the mirror no longer has every package $LOCK pins for $minor: re-lock (make images-lock) or use a mirror that has them (PGSYNC_DEBIAN_MIRROR)" >&2; exit 1; }
	while read -r p v a s; do
		f=$(deb_file "$p" "$v" "$a")
		got=$(sha256sum "$dst.tmp/var/cache/apt/archives/$f" 2>/dev/null | cut -d' ' -f1) || true
		[ "$got" = "$s" ] || { echo "rootfs.sh: $f: SHA-256 ${got:-missing}, the lock says $s" >&2; exit 1; }
		[ -f "$DEBS/$f" ] || cp "$dst.tmp/var/cache/apt/archives/$f" "$DEBS/$f"
	done <<<"$want"
	# shellcheck disable=SC2086
	in_chroot "$dst.tmp" sh -euc '
		apt-get install -y -qq --no-download --allow-downgrades --no-install-recommends '"$(echo $pins)"' >/dev/null
		mkdir -p /var/lib/postgresql/data /var/run/postgresql
		chown -R 26:26 /var/lib/postgresql /var/run/postgresql
		chmod 2775 /var/run/postgresql
		apt-get clean
	' >>"$log" 2>&1 || { tail -20 "$log" >&2; exit 1; }
	got=$(chroot "$dst.tmp" dpkg-query -W -f='${Package} ${Version} ${Architecture}\n' | sort)
	if [ "$got" != "$(echo "$want" | awk '{print $1, $2, $3}')" ]; then
		echo "rootfs.sh: postgresql-$minor's packages differ from $LOCK:" >&2
		diff <(echo "$want" | awk '{print $1, $2, $3}') <(echo "$got") >&2 || true
		exit 1
	fi
	rm -f "$dst.tmp/usr/sbin/policy-rc.d"
	normalise "$dst.tmp" "$suites"
	got=$(chroot "$dst.tmp" /usr/lib/postgresql/15/bin/postgres --version)
	case $got in *" $minor"*) ;; *) echo "rootfs.sh: expected PostgreSQL $minor, got: $got" >&2; exit 1 ;; esac
	[ "$(chroot "$dst.tmp" id -u postgres):$(chroot "$dst.tmp" id -g postgres)" = "26:26" ] ||
		{ echo "rootfs.sh: postgres is not uid/gid 26" >&2; exit 1; }
	echo "$key" >"$dst.tmp/.ready"
	rm -rf "$dst"
	mv "$dst.tmp" "$dst"
	echo "rootfs.sh: $got" >&2
done

if [ "$mode" = lock ]; then
	echo "# The Debian packages of the PostgreSQL operand images, exactly: hack/kube/rootfs.sh"
	echo "# installs these versions, checks each archive's SHA-256 and refuses any other"
	echo "# package. Written by \`make images-lock\` (rootfs.sh --lock); epoch is the"
	echo "# SOURCE_DATE_EPOCH of the images (their creation time, the clamp of file times)."
	echo "# Lines: MINOR PACKAGE VERSION ARCH SHA256"
	echo "epoch $epoch"
	for minor in "$@"; do cat "$ROOTFS/lock-$minor.lines"; rm -f "$ROOTFS/lock-$minor.lines"; done
fi
