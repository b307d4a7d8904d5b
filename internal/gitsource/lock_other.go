//go:build !unix

package gitsource

import "context"

// lockFile is a no-op where flock(2) does not exist: on such systems two
// processes must not share one cache directory. pgsync's daemon and CI run
// on Linux.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	return func() {}, ctx.Err()
}
