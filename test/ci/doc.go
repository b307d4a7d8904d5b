// Package ci tests the pull-request pipeline in examples/ci: the script
// pgsync-pr-plan.sh run with bash, curl, jq and git against a real pgsync
// binary and real Git repositories, talking to httptest servers that answer
// as GitHub's issue-comments API and GitLab's notes API do; and the GitHub
// workflow and GitLab job that call it, checked against the script's
// variables (and by actionlint).
//
// The package owns no production code and imports none of pgsync's
// packages: the pipeline meets pgsync only as a command.
package ci
