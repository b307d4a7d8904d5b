package imagetrust

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/payload"
)

// Sign signs the image d names with s and adds the signature to the
// image's sha256-HEX.sig signature image (created when there is none),
// keeping the signatures already there, as `cosign sign --key
// --tlog-upload=false` does. The payload claims d's repository as the
// image's identity.
func (r Registry) Sign(ctx context.Context, d name.Digest, s signature.Signer) error {
	return r.SignAs(ctx, d, "", s)
}

// SignAs is Sign with the identity the payload claims (its
// docker-reference: the name the image is pulled by, when it is reached
// here under another); empty means d's repository.
func (r Registry) SignAs(ctx context.Context, d name.Digest, identity string, s signature.Signer) error {
	if _, err := v1.NewHash(d.DigestStr()); err != nil {
		return fmt.Errorf("sign %s: %w", d, err)
	}
	body, err := json.Marshal(payload.Cosign{Image: d, ClaimedIdentity: identity})
	if err != nil {
		return fmt.Errorf("sign %s: %w", d, err)
	}
	// Signing again with the same key adds nothing (cosign's duplicate
	// detection): a layer with the same payload that the key verifies.
	if done, err := r.signedBy(ctx, d, body, s); err != nil || done {
		return err
	}
	sig, err := s.SignMessage(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("sign %s: %w", d, err)
	}
	layer := mutate.Addendum{
		Layer:       static.NewLayer(body, SimpleSigningMediaType),
		MediaType:   SimpleSigningMediaType,
		Annotations: map[string]string{SignatureAnnotation: base64.StdEncoding.EncodeToString(sig)},
	}
	return r.appendLayer(ctx, d, ".sig", layer, nil)
}

// signedBy reports whether d's signature image already holds payload
// signed by s's key.
func (r Registry) signedBy(ctx context.Context, d name.Digest, payload []byte, s signature.Signer) (bool, error) {
	old, tag, err := r.fetchSuffixImage(ctx, d, ".sig")
	if err != nil || old == nil {
		return false, err
	}
	layers, err := readSuffixLayers(old)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", tag, err)
	}
	pub, err := s.PublicKey()
	if err != nil {
		return false, err
	}
	v, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		return false, err
	}
	for _, l := range layers {
		if l.mediaType != SimpleSigningMediaType || !bytes.Equal(l.content, payload) {
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(l.annotations[SignatureAnnotation])
		if err == nil && v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(payload)) == nil {
			return true, nil
		}
	}
	return false, nil
}

// appendLayer adds layer to d's suffix image, first dropping the layers
// drop matches; it writes the image back under the suffix tag.
func (r Registry) appendLayer(ctx context.Context, d name.Digest, suffix string, add mutate.Addendum, drop func(suffixLayer) bool) error {
	old, tag, err := r.fetchSuffixImage(ctx, d, suffix)
	if err != nil {
		return err
	}
	img := emptySuffixImage()
	if old != nil {
		layers, err := readSuffixLayers(old)
		if err != nil {
			return fmt.Errorf("read %s: %w", tag, err)
		}
		for _, l := range layers {
			if drop != nil && drop(l) {
				continue
			}
			if img, err = mutate.Append(img, mutate.Addendum{Layer: static.NewLayer(l.content, l.mediaType), MediaType: l.mediaType, Annotations: l.annotations}); err != nil {
				return err
			}
		}
	}
	if img, err = mutate.Append(img, add); err != nil {
		return err
	}
	if err := remote.Write(tag, img, r.opts(ctx)...); err != nil {
		return fmt.Errorf("write %s: %w", tag, err)
	}
	return nil
}

// Signature is a signature found on an image that a key verified.
type Signature struct {
	// Key is the name of the key that verified it.
	Key string
	// ClaimedIdentity is the payload's docker-reference: where the signer
	// said the image was (cosign, like pgsync, does not hold a signature
	// to it: the digest is what is signed).
	ClaimedIdentity string
}

// ErrNoSignature is returned (wrapped) by Verify when the image has no
// signature image at all.
var ErrNoSignature = errors.New("no signature")

// Verify checks the signatures of the image d names: it returns those
// that one of keys verifies and whose payload names exactly d's digest.
// An image with no signature, or none that verifies, is an error that
// says why each signature was not accepted.
func (r Registry) Verify(ctx context.Context, d name.Digest, keys []Key) ([]Signature, error) {
	if len(keys) == 0 {
		return nil, errors.New("verify: no public key given")
	}
	layers, err := r.verifiedLayers(ctx, d, ".sig", ErrNoSignature)
	if err != nil {
		return nil, err
	}
	var good []Signature
	var why []string
	for i, l := range layers {
		s, err := verifySimpleSigning(l, d, keys)
		if err != nil {
			why = append(why, fmt.Sprintf("signature %d: %v", i+1, err))
			continue
		}
		good = append(good, s)
	}
	if len(good) == 0 {
		if len(why) == 0 {
			why = append(why, "the signature image has no layer")
		}
		return nil, fmt.Errorf("%s: no valid signature by %s: %s", d, keyNames(keys), strings.Join(why, "; "))
	}
	return good, nil
}

func verifySimpleSigning(l suffixLayer, d name.Digest, keys []Key) (Signature, error) {
	if l.mediaType != SimpleSigningMediaType {
		return Signature{}, fmt.Errorf("media type %s, not %s", l.mediaType, SimpleSigningMediaType)
	}
	b64, ok := l.annotations[SignatureAnnotation]
	if !ok {
		return Signature{}, fmt.Errorf("no %s annotation", SignatureAnnotation)
	}
	sig, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return Signature{}, fmt.Errorf("annotation %s is not base64: %v", SignatureAnnotation, err)
	}
	key, err := verifyWithAny(keys, sig, l.content)
	if err != nil {
		return Signature{}, err
	}
	// Only a verified payload is read.
	var p payload.SimpleContainerImage
	if err := json.Unmarshal(l.content, &p); err != nil {
		return Signature{}, fmt.Errorf("payload: %v", err)
	}
	if p.Critical.Type != payload.CosignSignatureType {
		return Signature{}, fmt.Errorf("payload type %q, not %q", p.Critical.Type, payload.CosignSignatureType)
	}
	if got := p.Critical.Image.DockerManifestDigest; got != d.DigestStr() {
		return Signature{}, fmt.Errorf("signed by %s for another image: %s", key, got)
	}
	return Signature{Key: key, ClaimedIdentity: p.Critical.Identity.DockerReference}, nil
}

// verifyWithAny returns the name of the first key that verifies sig over
// message.
func verifyWithAny(keys []Key, sig, message []byte) (string, error) {
	for _, k := range keys {
		if k.Verifier.VerifySignature(bytes.NewReader(sig), bytes.NewReader(message)) == nil {
			return k.Name, nil
		}
	}
	return "", fmt.Errorf("not signed by %s", keyNames(keys))
}

func keyNames(keys []Key) string {
	var n []string
	for _, k := range keys {
		n = append(n, k.Name)
	}
	if len(n) == 1 {
		return n[0]
	}
	return "any of " + strings.Join(n, ", ")
}
