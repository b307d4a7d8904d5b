package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/sigstore/pkg/signature"
	spdxjson "github.com/spdx/tools-golang/json"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"
	"github.com/spf13/cobra"

	"github.com/pgsync/pgsync/internal/imagepolicy"
	"github.com/pgsync/pgsync/internal/imagetrust"
)

func init() { commands = append(commands, newImageCmd) }

const imageHelpKeys = `Keys are cosign's: --key FILE is a PEM private key, cosign's encrypted
format (its password in the environment variable --password-env names,
COSIGN_PASSWORD by default, as for cosign) or unencrypted PKCS#8; public keys
are PEM (cosign.pub). Registries are reached with the credentials of
~/.docker/config.json; loopback and private addresses over plain HTTP.`

func newImageCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Sign container images, attach and read their SBOMs, verify them (cosign-compatible)",
		Long: `Image signs container images and verifies their signatures the way cosign does
with a key — no certificate, no transparency log, so it works offline — and
attaches SPDX 2.3 SBOMs as signed in-toto attestations (what cosign attest
--type spdxjson writes). cosign verify and cosign verify-attestation check what
it writes; it checks what they write. See docs/supply-chain.md.

` + imageHelpKeys,
	}
	cmd.AddCommand(newImageSBOMCmd(), newImageSignCmd(), newImageAttestCmd(), newImageVerifyCmd(), newImageCheckCmd())
	return cmd
}

var imageRemote = imagetrust.Registry{Options: []remote.Option{remote.WithAuthFromKeychain(authn.DefaultKeychain)}}

// resolveImage parses IMAGE and resolves a tag to the digest it names now.
func resolveImage(ctx context.Context, ref string) (name.Digest, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return name.Digest{}, fmt.Errorf("image %q: %w", ref, err)
	}
	return imageRemote.Resolve(ctx, r)
}

// describeRemote reads the image d names from the registry and describes
// it.
func describeRemote(ctx context.Context, d name.Digest, version string) (imagetrust.SBOM, error) {
	img, err := remote.Image(d, append(append([]remote.Option{}, imageRemote.Options...), remote.WithContext(ctx))...)
	if err != nil {
		return imagetrust.SBOM{}, fmt.Errorf("read %s: %w", d, err)
	}
	return imagetrust.Describe(img, d.Context().Name(), version, "pgsync")
}

func newImageSBOMCmd() *cobra.Command {
	var out, version string
	cmd := &cobra.Command{
		Use:   "sbom IMAGE",
		Short: "Print the SPDX 2.3 SBOM of an image, read from its file system",
		Long: `Sbom reads IMAGE from its registry and prints its SBOM as SPDX 2.3 JSON: the
Debian packages of its dpkg status (/var/lib/dpkg/status) with their
versions and package URLs, and the Go modules of its entrypoint when that is
a Go binary. An image with neither is an error.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			d, err := resolveImage(cmd.Context(), a[0])
			if err != nil {
				return err
			}
			s, err := describeRemote(cmd.Context(), d, version)
			if err != nil {
				return err
			}
			b, err := imagetrust.MarshalSPDX(s.Document())
			if err != nil {
				return err
			}
			return writeOut(cmd.OutOrStdout(), out, append(b, '\n'))
		},
	}
	cmd.Flags().StringVarP(&out, "out", "o", "", "write to FILE instead of stdout")
	cmd.Flags().StringVar(&version, "version", "", "the image's version in the SBOM (default: its tag)")
	return cmd
}

func writeOut(stdout io.Writer, file string, b []byte) error {
	if file == "" {
		_, err := stdout.Write(b)
		return err
	}
	return os.WriteFile(file, b, 0o644)
}

type signFlags struct {
	key, passwordEnv, identity string
}

func (f *signFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.key, "key", "", "the PEM private key to sign with (required)")
	cmd.Flags().StringVar(&f.passwordEnv, "password-env", "COSIGN_PASSWORD", "the environment variable holding the key's password")
	cmd.Flags().StringVar(&f.identity, "identity", "", "the image name the signature claims (default: IMAGE's repository)")
	_ = cmd.MarkFlagRequired("key")
}

func (f *signFlags) signer() (signature.Signer, error) {
	return imagetrust.LoadSignerFile(f.key, []byte(os.Getenv(f.passwordEnv)))
}

func newImageSignCmd() *cobra.Command {
	var f signFlags
	cmd := &cobra.Command{
		Use:   "sign --key FILE IMAGE...",
		Short: "Sign images (cosign's key-based signature, no transparency log)",
		Long: `Sign signs each IMAGE (a tag is resolved to its digest first: the digest is
what is signed) and adds the signature to the image's sha256-HEX.sig tag, as
cosign sign --key --tlog-upload=false does. It prints IMAGE@DIGEST per image.

` + imageHelpKeys,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			s, err := f.signer()
			if err != nil {
				return err
			}
			for _, ref := range a {
				d, err := resolveImage(cmd.Context(), ref)
				if err != nil {
					return err
				}
				if err := imageRemote.SignAs(cmd.Context(), d, f.identity, s); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), d.String())
			}
			return nil
		},
	}
	f.register(cmd)
	return cmd
}

func newImageAttestCmd() *cobra.Command {
	var f signFlags
	var sbomFile string
	cmd := &cobra.Command{
		Use:   "attest --key FILE IMAGE...",
		Short: "Attach the SBOM of images as signed SPDX attestations",
		Long: `Attest computes each IMAGE's SBOM (as pgsync image sbom does; --sbom FILE
attaches that SPDX JSON document instead, for one IMAGE) and attaches it as an
in-toto attestation signed with --key in the image's sha256-HEX.att tag, as
cosign attest --key --type spdxjson --tlog-upload=false does; an SPDX
attestation already there is replaced. It prints IMAGE@DIGEST per image.

` + imageHelpKeys,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			if sbomFile != "" && len(a) != 1 {
				return errors.New("--sbom FILE attaches one document: give one IMAGE")
			}
			s, err := f.signer()
			if err != nil {
				return err
			}
			for _, ref := range a {
				d, err := resolveImage(cmd.Context(), ref)
				if err != nil {
					return err
				}
				doc, err := sbomFor(cmd.Context(), d, ref, sbomFile)
				if err != nil {
					return err
				}
				if f.identity != "" {
					doc.DocumentName = f.identity
				}
				if err := imageRemote.AttachSBOM(cmd.Context(), d, doc, s); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), d.String())
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&sbomFile, "sbom", "", "attach this SPDX JSON document instead of computing it")
	return cmd
}

func newImageVerifyCmd() *cobra.Command {
	var keys []string
	var sbom bool
	var output string
	cmd := &cobra.Command{
		Use:   "verify --key FILE [--key FILE]... [--sbom] IMAGE",
		Short: "Verify an image's signatures (and its SBOM attestation) with public keys",
		Long: `Verify resolves IMAGE to its digest and checks its signatures (the
sha256-HEX.sig tag, as cosign writes it) against the public keys: it succeeds
when one of them signed exactly that digest. With --sbom an SPDX attestation
signed by one of the keys must be attached too. It prints the digest, each
valid signature's key and, with --sbom, the attested packages' count; -o json
prints the verified SBOM.

Exit status: 0 verified, 1 not (every signature's reason is printed).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			if output != "" && output != "text" && output != "json" {
				return fmt.Errorf("-o %q: text or json", output)
			}
			if output == "json" && !sbom {
				return errors.New("-o json prints the verified SBOM: add --sbom")
			}
			var ks []imagetrust.Key
			for _, k := range keys {
				key, err := imagetrust.LoadPublicKeyFile(k)
				if err != nil {
					return err
				}
				ks = append(ks, key)
			}
			d, err := resolveImage(cmd.Context(), a[0])
			if err != nil {
				return err
			}
			sigs, err := imageRemote.Verify(cmd.Context(), d, ks)
			if err != nil {
				return err
			}
			var sboms []imagetrust.VerifiedSBOM
			if sbom {
				if sboms, err = imageRemote.VerifySBOM(cmd.Context(), d, ks); err != nil {
					return err
				}
			}
			w := cmd.OutOrStdout()
			if output == "json" {
				var v any
				if err := json.Unmarshal(sboms[0].JSON, &v); err != nil {
					return err
				}
				e := json.NewEncoder(w)
				e.SetIndent("", "  ")
				return e.Encode(v)
			}
			fmt.Fprintln(w, d.String())
			for _, s := range sigs {
				fmt.Fprintf(w, "  signed by %s (claims %s)\n", s.Key, s.ClaimedIdentity)
			}
			for _, s := range sboms {
				fmt.Fprintf(w, "  SBOM by %s: %s, %d packages\n", s.Key, s.Document.DocumentName, len(s.Document.Packages)-1)
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&keys, "key", nil, "a PEM public key (repeatable: any of them)")
	cmd.Flags().BoolVar(&sbom, "sbom", false, "require a signed SPDX SBOM attestation too")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text, or json (the verified SBOM; with --sbom)")
	_ = cmd.MarkFlagRequired("key")
	return cmd
}

// sbomFor returns the SPDX document to attach to d: file's, or the image's
// own (its tag as the version).
func sbomFor(ctx context.Context, d name.Digest, ref, file string) (*spdx.Document, error) {
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		doc, err := spdxjson.Read(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		return doc, nil
	}
	version := ""
	if t, err := name.NewTag(ref); err == nil && t.TagStr() != "latest" {
		version = t.TagStr()
	}
	s, err := describeRemote(ctx, d, version)
	if err != nil {
		return nil, err
	}
	return s.Document(), nil
}

func newImageCheckCmd() *cobra.Command {
	var policyFile string
	cmd := &cobra.Command{
		Use:   "check --policy FILE IMAGE...",
		Short: "Decide images against an image policy, as a rollout will",
		Long: `Check parses the image policy FILE (docs/supply-chain.md) and decides each
IMAGE against it: the first rule matching the image's REGISTRY/REPO applies;
tags are resolved, signatures and SBOM attestations verified through the
registry as the rule asks. It prints per image "allowed IMAGE → IMAGE@DIGEST"
or "refused IMAGE", each with the rule's reason.

plan, apply and run enforce the same policy with --image-policy FILE; this
command is how a policy is written and tried.

Exit status: 0 when every IMAGE is allowed, 1 otherwise.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			data, err := os.ReadFile(policyFile)
			if err != nil {
				return err
			}
			p, err := imagepolicy.Parse(policyFile, data)
			if err != nil {
				return err
			}
			c := &imagepolicy.Checker{Policy: p, Registry: imageRemote}
			w := cmd.OutOrStdout()
			refused := 0
			for _, img := range a {
				d, err := c.Check(cmd.Context(), img)
				if err != nil {
					return err
				}
				if d.Allowed {
					fmt.Fprintf(w, "allowed %s → %s\n  %s\n", img, d.Image, d.Reason)
				} else {
					refused++
					fmt.Fprintf(w, "refused %s\n  %s\n", img, d.Reason)
				}
			}
			if refused > 0 {
				return exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&policyFile, "policy", "", "the image policy file (required)")
	_ = cmd.MarkFlagRequired("policy")
	return cmd
}
