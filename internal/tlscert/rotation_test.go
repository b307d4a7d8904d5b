package tlscert

import (
	"crypto/rand"
	"crypto/x509"
	"testing"
	"time"
)

// A CA is replaced a year before it expires; its successor is trusted
// at once but issues only from its NotBefore, a month later; a bundle
// keeps what has not expired.
func TestRotation(t *testing.T) {
	_, old := mustCA(t)
	due := old.NotAfter.Add(-CARenewBefore)
	if RotationDue([]*x509.Certificate{old}, due.Add(-time.Hour)) || !RotationDue([]*x509.Certificate{old}, due.Add(time.Hour)) {
		t.Errorf("rotation due around %s: wrong side of the year before expiry", due)
	}
	if RotationDue(nil, t0) {
		t.Error("rotation due with no CA")
	}
	at := due.Add(time.Hour)
	nextPair, err := NewCAFrom("pgsync db/pg1", at.Add(SwitchAfter), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	next, _, err := Parse(nextPair)
	if err != nil {
		t.Fatal(err)
	}
	if !next.NotBefore.Equal(at.Add(SwitchAfter)) {
		t.Errorf("successor valid from %s, want %s", next.NotBefore, at.Add(SwitchAfter))
	}
	both := []*x509.Certificate{old, next}
	if RotationDue(both, at) {
		t.Error("rotation still due once the successor exists")
	}
	for _, tt := range []struct {
		name string
		now  time.Time
		want int
	}{
		{"before the successor is valid", at, 0},
		{"once it is", at.Add(SwitchAfter + time.Minute), 1},
		{"after the old one expired", old.NotAfter.Add(time.Hour), 1},
		{"after both expired", next.NotAfter.Add(time.Hour), -1},
	} {
		if got := Issuer(both, tt.now); got != tt.want {
			t.Errorf("%s: issuer %d, want %d", tt.name, got, tt.want)
		}
	}
	bundle, err := ParseBundle(Bundle(both, at))
	if err != nil || len(bundle) != 2 || !bundle[0].Equal(old) || !bundle[1].Equal(next) {
		t.Fatalf("bundle at rotation: %d certificates, %v; want the old and the new", len(bundle), err)
	}
	if bundle, _ := ParseBundle(Bundle(both, old.NotAfter.Add(time.Hour))); len(bundle) != 1 || !bundle[0].Equal(next) {
		t.Errorf("bundle after the old CA expired: %d certificates, want the new one alone", len(bundle))
	}
	if _, err := ParseBundle([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")); err == nil {
		t.Error("a key parsed as a certificate bundle")
	}
	if _, err := ParseBundle([]byte("not pem")); err == nil {
		t.Error("text parsed as a certificate bundle")
	}
}
