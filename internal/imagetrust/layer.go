package imagetrust

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// maxPayload bounds what is read of one signature or attestation layer
// (an SBOM of a few thousand packages is a few MB).
const maxPayload = 64 << 20

// readLayer reads a layer's compressed bytes (signature and attestation
// layers are stored as they are) and checks them against the layer's
// digest and size.
func readLayer(l v1.Layer, size int64) ([]byte, error) {
	if size > maxPayload {
		return nil, fmt.Errorf("%d bytes: more than the %d accepted", size, maxPayload)
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxPayload+1))
	if err != nil {
		return nil, err
	}
	dg, err := l.Digest()
	if err != nil {
		return nil, err
	}
	if dg.Algorithm != "sha256" {
		return nil, fmt.Errorf("digest algorithm %s not supported", dg.Algorithm)
	}
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); got != dg.Hex {
		return nil, fmt.Errorf("content has digest sha256:%s, not %s", got, dg)
	}
	if int64(len(b)) != size {
		return nil, fmt.Errorf("content is %d bytes, the manifest says %d", len(b), size)
	}
	return bytes.Clone(b), nil
}
