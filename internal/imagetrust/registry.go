package imagetrust

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Media types and annotations of cosign's signature and attestation images.
const (
	SimpleSigningMediaType  types.MediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	DSSEMediaType           types.MediaType = "application/vnd.dsse.envelope.v1+json"
	SignatureAnnotation                     = "dev.cosignproject.cosign/signature"
	PredicateTypeAnnotation                 = "predicateType"
)

// Registry reaches the registry holding images, their signatures and
// attestations. Options are passed to every go-containerregistry call
// (authentication, transport); the context is added per call.
type Registry struct {
	Options []remote.Option
}

func (r Registry) opts(ctx context.Context) []remote.Option {
	return append(append([]remote.Option{}, r.Options...), remote.WithContext(ctx))
}

// Resolve returns the digest ref names: its own digest when it has one,
// else the digest its tag points at now (a HEAD request).
func (r Registry) Resolve(ctx context.Context, ref name.Reference) (name.Digest, error) {
	if d, ok := ref.(name.Digest); ok {
		return d, nil
	}
	desc, err := remote.Head(ref, r.opts(ctx)...)
	if err != nil {
		return name.Digest{}, fmt.Errorf("resolve %s: %w", ref, err)
	}
	return ref.Context().Digest(desc.Digest.String()), nil
}

// suffixTag is the tag cosign stores an image's signatures (".sig") or
// attestations (".att") under: sha256-HEX.sig in the image's repository.
func suffixTag(d name.Digest, suffix string) (name.Tag, error) {
	h, err := v1.NewHash(d.DigestStr())
	if err != nil {
		return name.Tag{}, err
	}
	return d.Context().Tag(h.Algorithm + "-" + h.Hex + suffix), nil
}

// fetchSuffixImage returns the image at d's suffix tag, or nil when there
// is none.
func (r Registry) fetchSuffixImage(ctx context.Context, d name.Digest, suffix string) (v1.Image, name.Tag, error) {
	tag, err := suffixTag(d, suffix)
	if err != nil {
		return nil, name.Tag{}, err
	}
	img, err := remote.Image(tag, r.opts(ctx)...)
	if err != nil {
		var te *transport.Error
		if errors.As(err, &te) && te.StatusCode == http.StatusNotFound {
			return nil, tag, nil
		}
		return nil, tag, fmt.Errorf("read %s: %w", tag, err)
	}
	return img, tag, nil
}

// emptySuffixImage is the base of a new signature or attestation image, as
// cosign makes it: an OCI manifest with an empty config.
func emptySuffixImage() v1.Image {
	return mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
}

// suffixLayer is one layer of a signature or attestation image with its
// annotations and content.
type suffixLayer struct {
	mediaType   types.MediaType
	annotations map[string]string
	content     []byte
}

// readSuffixLayers reads every layer of a signature or attestation image;
// each layer's content is checked against its digest by the registry
// client.
// verifiedLayers reads the layers of d's suffix image for a verifier; a
// missing one is missing (ErrNoSignature, ErrNoAttestation) naming its tag.
func (r Registry) verifiedLayers(ctx context.Context, d name.Digest, suffix string, missing error) ([]suffixLayer, error) {
	img, tag, err := r.fetchSuffixImage(ctx, d, suffix)
	if err != nil {
		return nil, err
	}
	if img == nil {
		return nil, fmt.Errorf("%s: %w (no %s)", d, missing, tag.TagStr())
	}
	layers, err := readSuffixLayers(img)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", tag, err)
	}
	return layers, nil
}

func readSuffixLayers(img v1.Image) ([]suffixLayer, error) {
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	var out []suffixLayer
	for _, desc := range m.Layers {
		l, err := img.LayerByDigest(desc.Digest)
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", desc.Digest, err)
		}
		b, err := readLayer(l, desc.Size)
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", desc.Digest, err)
		}
		out = append(out, suffixLayer{mediaType: desc.MediaType, annotations: desc.Annotations, content: b})
	}
	return out, nil
}
