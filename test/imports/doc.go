// Package imports holds the test that holds every package of the module to
// the import rule its doc comment states, so that the rule is checked and
// not only read.
//
// A rule is a sentence of a package doc comment shaped like the last one of
// this comment, for example:
//
//	It must not import `internal/plan`, `k8s.io/client-go/...` or `github.com/jackc/pgx/...`.
//
// Precisely: in a paragraph of the doc comment (indented lists and code
// blocks are not read), the words of the rule up to the end of their
// sentence (a period outside backquotes followed by white space or the end
// of the paragraph). Each backquoted item in that span is a forbidden
// import and nothing else in it is; a rule with no backquoted item fails
// the test, because it would be prose that nothing checks. An item is one
// of:
//
//   - a path whose first element is internal, hack, test, cmd or bench:
//     relative to the module (`internal/plan` is
//     github.com/pgsync/pgsync/internal/plan);
//   - any other import path, taken as written (`os/exec`,
//     `k8s.io/client-go/...`);
//   - `pgsync/...`: every package of this module except the one whose rule
//     it is (its own subpackages included).
//
// A trailing `/...` means the path and every package under it.
//
// Rules are transitive: a package breaks one when a package it imports,
// directly or through any chain, matches an item, for this module's paths
// and for others alike (every rule held that way when the test was
// written); the failure names the chain. Only what the package's non-test
// files import on the running platform counts: a _test.go file may import
// what its package may not.
//
// One rule needs no sentence: a product package (under internal/ or cmd/)
// never imports `testing`, `hack/...` or `test/...`, as test helpers live
// under test/ and tooling under hack/.
//
// It must not import `pgsync/...`.
package imports
