package desired

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/pgsync/pgsync/internal/gitsource"
)

// HeadSince reads the Source's Ref as the daemon's next commit to apply,
// given lastApplied, the commit it applied last ("" when it never applied
// one). Before anything at the head is read:
//
//   - the head must be lastApplied or descend from it; one that does not (a
//     force-push, a rollback, or a lastApplied the repository does not
//     hold) is refused with a *RewindError unless allowRewind, and
//     State.Rewind says it was let through;
//   - with VerifyKey, every commit reachable from the head and not from
//     lastApplied (merges and every side they bring in) must carry a valid
//     OpenPGP signature by a key in the ring, and so must the head itself
//     (a rollback's target is no newer commit, but it is what gets
//     applied); otherwise a *UnsignedError names each commit that is not.
//     Without a lastApplied to start from (the first run, or a rewind
//     from a commit the repository does not hold) only the head is checked.
//
// Problems in the Cluster files come back as Head's do (cluster.Errors).
func (r *Reader) HeadSince(lastApplied string, allowRewind bool) (State, error) {
	head, err := r.repo.Resolve(r.src.Ref)
	if err != nil {
		return State{}, err
	}
	from, rewind, err := r.descent(lastApplied, head, allowRewind)
	if err != nil {
		return State{}, err
	}
	if r.src.VerifyKey != "" {
		if err := r.verifySince(from, head); err != nil {
			return State{}, err
		}
	}
	state, err := r.load(head, false) // verified above, range and all
	state.Rewind = rewind
	return state, err
}

// descent checks that head descends from lastApplied and returns the
// commit the signature check starts from ("" for the head alone) and
// whether a rewind was let through.
func (r *Reader) descent(lastApplied, head string, allowRewind bool) (from string, rewind bool, err error) {
	if lastApplied == "" {
		return "", false, nil
	}
	ok, err := r.repo.Ancestor(lastApplied, head)
	switch {
	case errors.Is(err, gitsource.ErrRevisionNotFound):
		rerr := &RewindError{Ref: r.src.Ref, Head: head, LastApplied: lastApplied, Missing: true}
		if !allowRewind {
			return "", false, rerr
		}
		r.log.Warn("rewind allowed", "reason", rerr.reason(), "commit", ShortSHA(head))
		return "", true, nil
	case err != nil:
		return "", false, fmt.Errorf("does %s descend from the last applied commit %s: %w", ShortSHA(head), ShortSHA(lastApplied), err)
	case !ok:
		rerr := &RewindError{Ref: r.src.Ref, Head: head, LastApplied: lastApplied}
		if !allowRewind {
			return "", false, rerr
		}
		r.log.Warn("rewind allowed", "reason", rerr.reason(), "commit", ShortSHA(head))
		return lastApplied, true, nil
	}
	return lastApplied, false, nil
}

// verifySince checks head and every commit of from..head.
func (r *Reader) verifySince(from, head string) error {
	ring, err := os.ReadFile(r.src.VerifyKey)
	if err != nil {
		return fmt.Errorf("--verify-key: %w", err)
	}
	var verdicts []gitsource.CommitVerdict
	if from != "" {
		if verdicts, err = r.repo.VerifyRange(from, head, string(ring)); err != nil {
			return fmt.Errorf("verifying the commits since %s: %w", ShortSHA(from), err)
		}
	}
	if len(verdicts) == 0 || verdicts[0].Commit != head {
		v, err := r.repo.Verdict(head, string(ring))
		if err != nil {
			return fmt.Errorf("verifying commit %s: %w", ShortSHA(head), err)
		}
		verdicts = append([]gitsource.CommitVerdict{v}, verdicts...)
	}
	uerr := &UnsignedError{Ref: r.src.Ref, Head: head, Since: from, KeyFile: r.src.VerifyKey, Checked: len(verdicts)}
	signers := map[string]bool{}
	for _, v := range verdicts {
		if !v.OK() {
			uerr.Refused = append(uerr.Refused, RefusedCommit{Commit: v.Commit, Subject: v.Subject, Reason: v.Err.Error(), err: v.Err})
			continue
		}
		signers[v.Signer] = true
		r.log.Debug("commit signature verified", "commit", ShortSHA(v.Commit), "signer", v.Signer)
	}
	if len(uerr.Refused) > 0 {
		return uerr
	}
	names := make([]string, 0, len(signers))
	for s := range signers {
		names = append(names, s)
	}
	r.log.Info("commit signatures verified", "commit", ShortSHA(head), "since", ShortSHA(from), "commits", len(verdicts), "signers", strings.Join(names, ", "))
	return nil
}

// RewindError refuses a head that does not descend from the commit last
// applied.
type RewindError struct {
	Ref, Head, LastApplied string
	// Missing: the repository does not hold LastApplied (a force-push
	// removed it and the clone is fresh, or the repository was replaced),
	// so descent cannot be shown.
	Missing bool
}

func (e *RewindError) Error() string {
	return fmt.Sprintf("refusing commit %s of --ref %s: %s; pass --allow-rewind to apply it anyway", ShortSHA(e.Head), e.Ref, e.reason())
}

func (e *RewindError) reason() string {
	if e.Missing {
		return fmt.Sprintf("the last applied commit %s is not in the repository (removed by a force-push, or another repository), so %s cannot be shown to descend from it", ShortSHA(e.LastApplied), ShortSHA(e.Head))
	}
	return fmt.Sprintf("it does not descend from the last applied commit %s (a force-push or a rollback)", ShortSHA(e.LastApplied))
}

// UnsignedError refuses a head because commits it would bring in are not
// signed by a trusted key.
type UnsignedError struct {
	Ref, Head string
	// Since is the last applied commit the check started from ("" when
	// only the head was checked).
	Since string
	// KeyFile is the key ring (Source.VerifyKey).
	KeyFile string
	// Checked counts the commits checked; Refused lists the ones that
	// failed, head first.
	Checked int
	Refused []RefusedCommit
}

// RefusedCommit is one commit that is not signed by a trusted key.
type RefusedCommit struct {
	Commit, Subject string
	// Reason says why: not signed, signed with an SSH key, signed by a key
	// not in the ring, altered after signing.
	Reason string
	err    error
}

func (e *UnsignedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "refusing commit %s of --ref %s: ", ShortSHA(e.Head), e.Ref)
	if e.Since == "" {
		fmt.Fprintf(&b, "it is not signed by a key in %s: ", e.KeyFile)
	} else {
		fmt.Fprintf(&b, "%d of the %d commits since the last applied commit %s %s not signed by a key in %s: ",
			len(e.Refused), e.Checked, ShortSHA(e.Since), pluralVerb(len(e.Refused)), e.KeyFile)
	}
	for i, c := range e.Refused {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s %q: %s", ShortSHA(c.Commit), c.Subject, c.Reason)
	}
	return b.String()
}

// Unwrap gives the refused commits' causes, so errors.Is matches
// gitsource.ErrUnsigned or gitsource.ErrSSHSignature.
func (e *UnsignedError) Unwrap() []error {
	errs := make([]error, 0, len(e.Refused))
	for _, c := range e.Refused {
		errs = append(errs, c.err)
	}
	return errs
}

func pluralVerb(n int) string {
	if n == 1 {
		return "is"
	}
	return "are"
}
