// Package imagetrust signs container images and verifies their signatures
// the way cosign does with a key (no certificate, no transparency log, so
// it works offline), and builds SPDX 2.3 software bills of materials that
// it attaches to images as signed in-toto attestations.
//
// What it writes is what `cosign sign --key` and `cosign attest --key
// --type spdxjson` write, so `cosign verify` and `cosign verify-attestation`
// check it, and what it verifies is what they write:
//
//   - a signature is a layer of the image tagged sha256-HEX.sig in the
//     image's repository: its content is the simple-signing payload naming
//     the image's manifest digest, its annotation
//     dev.cosignproject.cosign/signature the base64 signature of that
//     payload;
//   - an attestation is a layer of the image tagged sha256-HEX.att: a DSSE
//     envelope (payload type application/vnd.in-toto+json) of an in-toto
//     statement whose subject is the image's digest and whose predicate is
//     the SBOM, annotated with its predicateType.
//
// It must not import `pgsync/...`, `k8s.io/client-go/...` or `github.com/go-git/...`.
package imagetrust
