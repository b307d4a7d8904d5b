#!/usr/bin/env bash
# Builds the cosign CLI from the Go module proxy into the tools cache, once
# per version, and prints its path. The supply-chain tests
# (internal/imagetrust) check pgsync's signatures and SBOM attestations with
# it and verify its signatures with pgsync's verifier (docs/supply-chain.md).
# Cold: 10.5 minutes on a 2-core machine under load (4.6 min of CPU; ~137 MB
# binary); cached: instant.
set -euo pipefail
VERSION=v2.6.5
CACHE=${PGSYNC_TOOLS_CACHE:-/var/cache/pgsync/tools}
dir=$CACHE/cosign-$VERSION
if [ ! -x "$dir/cosign" ]; then
	mkdir -p "$CACHE"
	exec 9>"$dir.lock"
	flock 9
	if [ ! -x "$dir/cosign" ]; then
		echo "cosign.sh: building cosign $VERSION from the Go module proxy" >&2
		rm -rf "$dir.tmp"
		(cd / && GOBIN="$dir.tmp" CGO_ENABLED=0 go install -trimpath "github.com/sigstore/cosign/v2/cmd/cosign@$VERSION") >&2
		mkdir -p "$dir"
		mv "$dir.tmp/cosign" "$dir/cosign"
		rm -rf "$dir.tmp"
	fi
fi
echo "$dir/cosign"
