# Supply-chain tooling (docs/supply-chain.md).

.PHONY: cosign

# The cosign CLI the supply-chain tests check pgsync against, built from the
# Go module proxy into the tools cache (PGSYNC_TOOLS_CACHE, default
# /var/cache/pgsync/tools) once per version.
cosign:
	@hack/cosign.sh >/dev/null
