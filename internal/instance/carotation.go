package instance

import (
	"crypto/x509"
	"fmt"
	"path/filepath"
	"time"

	pc "github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/internal/tlscert"
)

// The CA's rotation (docs/security.md, "The CA's rotation"). The pod
// mounts every generation of the cluster's CA (pc.CAGenerationDir; the
// later ones appear when pgsync creates them). The instance trusts them
// all — its server's ssl_ca_file and its connections' sslrootcert are the
// bundle of the unexpired ones — and issues from the one valid now that
// expires last, so a new generation, valid only a month after pgsync
// created it, is trusted everywhere before anything is issued from it.

// caGenerations is the CA generations present in the pod's volume.
type caGenerations struct {
	gens  []int
	pairs []tlscert.Pair
	certs []*x509.Certificate
	// raw identifies what was read (a change issues anew).
	raw []byte
}

// readCAs reads every mounted generation; a generation is present when
// both its files are. The first must be: without it the result is empty.
func (m *Manager) readCAs() (caGenerations, error) {
	mounted := max(m.cfg.CAGenerations, 1)
	var paths []string
	for gen := 1; gen <= mounted; gen++ {
		dir := filepath.Join(m.cfg.CADir, pc.CAGenerationDir(gen))
		paths = append(paths, filepath.Join(dir, pc.CACertKey), filepath.Join(dir, pc.CAKeyKey))
	}
	data, err := readTogether(paths...)
	if err != nil {
		return caGenerations{}, err
	}
	var out caGenerations
	for gen := 1; gen <= mounted; gen++ {
		cert, key := data[2*(gen-1)], data[2*(gen-1)+1]
		if !cert.ok || !key.ok {
			if gen == 1 {
				return caGenerations{}, nil
			}
			continue
		}
		p := tlscert.Pair{CertPEM: cert.b, KeyPEM: key.b}
		c, _, err := tlscert.Parse(p)
		if err != nil {
			return caGenerations{}, fmt.Errorf("CA generation %d in %s: %w", gen, m.cfg.CADir, err)
		}
		out.gens, out.pairs, out.certs = append(out.gens, gen), append(out.pairs, p), append(out.certs, c)
		out.raw = append(append(append(out.raw, cert.b...), 0), append(key.b, 0)...)
	}
	return out, nil
}

// issuer is the generation to issue from at now (tlscert.Issuer).
func (g caGenerations) issuer(now time.Time) (int, error) {
	i := tlscert.Issuer(g.certs, now)
	if i < 0 {
		return -1, fmt.Errorf("no CA generation of %v is valid at %s", g.gens, now.UTC().Format(time.RFC3339))
	}
	return i, nil
}

// status is what /status says of them, for pgsync's rotation.
func (g caGenerations) status(mounted, issuer int, now time.Time) *pc.CAStatus {
	s := &pc.CAStatus{Mounted: max(mounted, 1), Issuer: g.gens[issuer], RotationDue: tlscert.RotationDue(g.certs, now)}
	for i, c := range g.certs {
		s.Newest = max(s.Newest, g.gens[i])
		if c.NotAfter.After(s.Expires) {
			s.Expires = c.NotAfter
		}
	}
	return s
}
