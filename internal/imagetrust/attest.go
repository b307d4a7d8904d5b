package imagetrust

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	ssldsse "github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/dsse"
	spdxjson "github.com/spdx/tools-golang/json"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"
)

// In-toto and SPDX names cosign uses for `--type spdxjson`.
const (
	InTotoPayloadType   = "application/vnd.in-toto+json"
	InTotoStatementType = "https://in-toto.io/Statement/v0.1"
	SPDXPredicateType   = "https://spdx.dev/Document"
)

type statement struct {
	Type          string          `json:"_type"`
	PredicateType string          `json:"predicateType"`
	Subject       []subject       `json:"subject"`
	Predicate     json.RawMessage `json:"predicate"`
}

type subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// MarshalSPDX returns doc as SPDX JSON.
func MarshalSPDX(doc *spdx.Document) ([]byte, error) {
	var b bytes.Buffer
	if err := spdxjson.Write(doc, &b); err != nil {
		return nil, err
	}
	return bytes.TrimSpace(b.Bytes()), nil
}

// AttachSBOM attaches doc to the image d names as an in-toto attestation
// signed by s (a DSSE envelope in the sha256-HEX.att image, as `cosign
// attest --key --type spdxjson --tlog-upload=false` writes it). An SPDX
// attestation already there is replaced, attestations of other types are
// kept.
func (r Registry) AttachSBOM(ctx context.Context, d name.Digest, doc *spdx.Document, s signature.Signer) error {
	h, err := v1.NewHash(d.DigestStr())
	if err != nil {
		return fmt.Errorf("attest %s: %w", d, err)
	}
	pred, err := MarshalSPDX(doc)
	if err != nil {
		return fmt.Errorf("attest %s: SBOM: %w", d, err)
	}
	st, err := json.Marshal(statement{
		Type:          InTotoStatementType,
		PredicateType: SPDXPredicateType,
		Subject:       []subject{{Name: d.Context().Name(), Digest: map[string]string{h.Algorithm: h.Hex}}},
		Predicate:     pred,
	})
	if err != nil {
		return fmt.Errorf("attest %s: %w", d, err)
	}
	env, err := dsse.WrapSigner(s, InTotoPayloadType).SignMessage(bytes.NewReader(st))
	if err != nil {
		return fmt.Errorf("attest %s: sign: %w", d, err)
	}
	add := mutate.Addendum{
		Layer:     static.NewLayer(env, DSSEMediaType),
		MediaType: DSSEMediaType,
		// cosign writes an empty signature annotation on attestations:
		// the signature is inside the envelope.
		Annotations: map[string]string{SignatureAnnotation: "", PredicateTypeAnnotation: SPDXPredicateType},
	}
	return r.appendLayer(ctx, d, ".att", add, func(l suffixLayer) bool {
		return l.annotations[PredicateTypeAnnotation] == SPDXPredicateType
	})
}

// envelope is a DSSE envelope as cosign stores it.
type envelope struct {
	PayloadType string `json:"payloadType"`
	Payload     string `json:"payload"`
	Signatures  []struct {
		KeyID string `json:"keyid"`
		Sig   string `json:"sig"`
	} `json:"signatures"`
}

// VerifiedSBOM is an SBOM attestation a key verified.
type VerifiedSBOM struct {
	Key      string
	Document *spdx.Document
	// JSON is the SPDX document as attested.
	JSON []byte
}

// ErrNoAttestation is returned (wrapped) by VerifySBOM when the image has
// no attestation image at all.
var ErrNoAttestation = errors.New("no attestation")

// VerifySBOM returns the SPDX SBOMs attached to the image d names that one
// of keys signed and whose statement names d's digest as its subject (by
// pgsync's AttachSBOM or `cosign attest --type spdxjson`).
func (r Registry) VerifySBOM(ctx context.Context, d name.Digest, keys []Key) ([]VerifiedSBOM, error) {
	if len(keys) == 0 {
		return nil, errors.New("verify: no public key given")
	}
	h, err := v1.NewHash(d.DigestStr())
	if err != nil {
		return nil, err
	}
	layers, err := r.verifiedLayers(ctx, d, ".att", ErrNoAttestation)
	if err != nil {
		return nil, err
	}
	var good []VerifiedSBOM
	var why []string
	for i, l := range layers {
		if l.annotations[PredicateTypeAnnotation] != SPDXPredicateType {
			continue
		}
		v, err := verifySPDXAttestation(l, h, keys)
		if err != nil {
			why = append(why, fmt.Sprintf("attestation %d: %v", i+1, err))
			continue
		}
		good = append(good, v)
	}
	if len(good) == 0 {
		if len(why) == 0 {
			why = append(why, "none of type "+SPDXPredicateType)
		}
		return nil, fmt.Errorf("%s: no valid SBOM attestation by %s: %s", d, keyNames(keys), strings.Join(why, "; "))
	}
	return good, nil
}

func verifySPDXAttestation(l suffixLayer, h v1.Hash, keys []Key) (VerifiedSBOM, error) {
	if l.mediaType != DSSEMediaType {
		return VerifiedSBOM{}, fmt.Errorf("media type %s, not %s", l.mediaType, DSSEMediaType)
	}
	var env envelope
	if err := json.Unmarshal(l.content, &env); err != nil {
		return VerifiedSBOM{}, fmt.Errorf("DSSE envelope: %v", err)
	}
	if env.PayloadType != InTotoPayloadType {
		return VerifiedSBOM{}, fmt.Errorf("payload type %q, not %q", env.PayloadType, InTotoPayloadType)
	}
	body, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return VerifiedSBOM{}, fmt.Errorf("DSSE payload is not base64: %v", err)
	}
	pae := ssldsse.PAE(env.PayloadType, body)
	key := ""
	for _, s := range env.Signatures {
		sig, err := base64.StdEncoding.DecodeString(s.Sig)
		if err != nil {
			continue
		}
		if k, err := verifyWithAny(keys, sig, pae); err == nil {
			key = k
			break
		}
	}
	if key == "" {
		return VerifiedSBOM{}, fmt.Errorf("not signed by %s", keyNames(keys))
	}
	// Only a verified statement is read.
	var st statement
	if err := json.Unmarshal(body, &st); err != nil {
		return VerifiedSBOM{}, fmt.Errorf("in-toto statement: %v", err)
	}
	if st.PredicateType != SPDXPredicateType {
		return VerifiedSBOM{}, fmt.Errorf("signed predicate type %q, not %q", st.PredicateType, SPDXPredicateType)
	}
	match := false
	for _, s := range st.Subject {
		if s.Digest[h.Algorithm] == h.Hex {
			match = true
		}
	}
	if !match {
		return VerifiedSBOM{}, fmt.Errorf("signed by %s for another image (subject %v)", key, st.Subject)
	}
	var doc spdx.Document
	if err := spdxjson.ReadInto(bytes.NewReader(st.Predicate), &doc); err != nil {
		return VerifiedSBOM{}, fmt.Errorf("SPDX predicate: %v", err)
	}
	return VerifiedSBOM{Key: key, Document: &doc, JSON: st.Predicate}, nil
}
