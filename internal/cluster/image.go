package cluster

// DefaultImageName is the image a Cluster without imageName or
// imageCatalogRef runs, for this pgsync release (docs/images.md). It is
// CloudNativePG's minimal PostgreSQL image (Debian trixie): the server
// binaries under /usr/lib/postgresql/17/bin, where the instance manager
// finds them, and the postgres user 26 that the pod's securityContext runs
// as (podcontract.PostgresUID); pgsync adds its own binary through the
// init container, so nothing else is needed in it. Changing it in a
// release rolls every cluster that relies on it (a visible rolling update
// in the plan); changing its major is refused for running clusters, as any
// major change is, so a release moves the minor only. Pin imageName, or
// pass --default-image, to keep an image across releases.
const DefaultImageName = "ghcr.io/cloudnative-pg/postgresql:17.9-minimal-trixie"

// Options adjust Load.
type Options struct {
	// DefaultImage replaces DefaultImageName (--default-image); empty means
	// DefaultImageName.
	DefaultImage string
}

// CheckDefaultImage checks an image given as the default: a reference
// whose version can be read (or pinned by digest only), of a supported
// major.
func CheckDefaultImage(ref string) error {
	_, err := ParseVersion(ref)
	return err
}
