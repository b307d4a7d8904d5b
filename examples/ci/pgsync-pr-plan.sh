#!/usr/bin/env bash
# Plans a pull/merge request with pgsync and keeps the plan in ONE comment on
# it: the first run posts the comment, later runs edit it in place.
#
#   pgsync-pr-plan.sh github|gitlab|none
#
# Exit 0 when the plan succeeded, with or without changes; 1 when pgsync
# failed or refused a change (the comment says what) or the comment could not
# be posted. The variables are described in README.md beside this script.
#
# Tokens and the kubeconfig pass through this script: never add `set -x`.
set -euo pipefail

die() {
	echo "pgsync-pr-plan: $*" >&2
	exit 1
}

need() {
	for v in "$@"; do
		[ -n "${!v:-}" ] || die "$v is not set"
	done
}

repo=${PGSYNC_REPO:-.}
path=${PGSYNC_PATH:-.}
ref=${PGSYNC_REF:-HEAD}
out=${PGSYNC_OUT:-plan.md}
marker='<!-- pgsync-plan -->'
# GitHub takes at most 65,536 characters in a comment; a character is at
# least a byte, so a body under this many bytes always fits.
max_body=65000

tmp=$(mktemp -d) # mode 0700: the kubeconfig and the API headers live here
trap 'rm -rf "$tmp"' EXIT

# Check the platform's settings first: a misconfigured job fails before it
# plans. The token goes into a header file that curl reads, so it appears in
# no command line.
platform=${1:-}
case $platform in
github)
	need GITHUB_TOKEN GITHUB_REPOSITORY PGSYNC_PR
	printf 'Authorization: Bearer %s\nAccept: application/vnd.github+json\nX-GitHub-Api-Version: 2022-11-28\n' \
		"$GITHUB_TOKEN" >"$tmp/headers"
	issues=${GITHUB_API_URL:-https://api.github.com}/repos/$GITHUB_REPOSITORY/issues
	;;
gitlab)
	PGSYNC_PR=${PGSYNC_PR:-${CI_MERGE_REQUEST_IID:-}}
	need GITLAB_TOKEN CI_API_V4_URL CI_PROJECT_ID PGSYNC_PR
	printf 'Authorization: Bearer %s\n' "$GITLAB_TOKEN" >"$tmp/headers"
	notes=$CI_API_V4_URL/projects/$CI_PROJECT_ID/merge_requests/$PGSYNC_PR/notes
	;;
none) ;;
*) die "usage: pgsync-pr-plan.sh github|gitlab|none" ;;
esac

# --- the plan -------------------------------------------------------------

args=(plan --repo "$repo" --path "$path" --ref "$ref" --format markdown --out "$out" --detailed-exitcode)
if [ -n "${PGSYNC_KUBECONFIG:-}" ]; then
	# A file (a GitLab "File" variable) or its base64 (a GitHub secret).
	if [ -f "$PGSYNC_KUBECONFIG" ]; then
		kubeconfig=$PGSYNC_KUBECONFIG
	else
		kubeconfig=$tmp/kubeconfig
		printf '%s' "$PGSYNC_KUBECONFIG" | base64 -d >"$kubeconfig" 2>/dev/null ||
			die "PGSYNC_KUBECONFIG is neither a file nor base64"
	fi
	# A CI runner is outside the cluster's network: read each instance's
	# /status through the API server unless told otherwise (docs/observe.md).
	args+=(--kubeconfig "$kubeconfig" --status-via "${PGSYNC_STATUS_VIA:-proxy}")
	if [ -n "${PGSYNC_CONTEXT:-}" ]; then args+=(--context "$PGSYNC_CONTEXT"); fi
	if [ -n "${PGSYNC_NAMESPACE:-}" ]; then args+=(--namespace "$PGSYNC_NAMESPACE"); fi
	against="the live clusters"
else
	[ -n "${PGSYNC_BASE:-}" ] || die "set PGSYNC_BASE (the commit to plan against) or PGSYNC_KUBECONFIG"
	base=$PGSYNC_BASE
	if [ "${PGSYNC_MERGE_BASE:-false}" = true ]; then
		# The base branch may have moved on since the branch was cut: its tip
		# would show others' later changes as undone by this one.
		base=$(git -C "$repo" merge-base "$base" "$ref") ||
			die "no merge base of $PGSYNC_BASE and $ref (a shallow clone? fetch the whole history)"
	fi
	args+=(--base "$base")
	against="\`$base\`"
fi

rm -f "$out" # pgsync writes it only on success: never post a stale one
rc=0
pgsync "${args[@]}" 2>"$tmp/stderr" || rc=$?
cat "$tmp/stderr" >&2

job_url=${CI_JOB_URL:-}
if [ -z "$job_url" ] && [ -n "${GITHUB_RUN_ID:-}" ]; then
	job_url=${GITHUB_SERVER_URL:-https://github.com}/${GITHUB_REPOSITORY:-}/actions/runs/$GITHUB_RUN_ID
fi

body=$tmp/body.md
{
	echo "$marker"
	case $rc in
	0 | 2)
		cat "$out"
		if [ -s "$tmp/stderr" ]; then
			if [ $(($(wc -c <"$out") + $(wc -c <"$tmp/stderr"))) -lt $((max_body - 1000)) ]; then
				printf '\n<details><summary>pgsync warnings</summary>\n\n````\n'
				cat "$tmp/stderr"
				printf '````\n\n</details>\n'
			else
				printf '\npgsync printed warnings that do not fit here: see the job log.\n'
			fi
		fi
		;;
	*)
		head_rev=$(git -C "$repo" rev-parse --short=12 "$ref" 2>/dev/null || echo "$ref")
		printf '### pgsync plan\n\n'
		# shellcheck disable=SC2016 # the backticks are Markdown
		printf '**pgsync failed or refused this change** (exit %s) planning `%s` against %s; nothing was planned:\n\n' \
			"$rc" "$head_rev" "$against"
		printf '````\n'
		# awk 1 ends a line cut short by head, so the fence closes on its own line.
		head -c $((max_body - 1000)) "$tmp/stderr" | awk 1
		printf '````\n'
		;;
	esac
	if [ -n "$job_url" ]; then printf '\n<sub>From [this run](%s).</sub>\n' "$job_url"; fi
} >"$body"

if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then cat "$body" >>"$GITHUB_STEP_SUMMARY"; fi

# --- the comment ----------------------------------------------------------

# request METHOD URL [JSON_FILE]: the response body lands in $tmp/response.
# No message here prints a request header.
request() {
	local data=() code
	if [ $# -gt 2 ]; then data=(-H 'Content-Type: application/json' --data-binary "@$3"); fi
	code=$(curl -sS --connect-timeout 10 --max-time 60 -X "$1" -H "@$tmp/headers" "${data[@]}" \
		-o "$tmp/response" -w '%{http_code}' "$2") || die "$1 $2: no answer"
	case $code in
	2??) ;;
	*) die "$1 $2: HTTP $code: $(head -c 300 "$tmp/response")" ;;
	esac
}

# find_comment LIST_URL AUTHOR_FIELD AUTHOR sets comment_id to the first
# comment that carries the marker and was written by AUTHOR, or to nothing.
find_comment() {
	local page=1
	comment_id=
	while :; do
		request GET "$1?per_page=100&page=$page"
		comment_id=$(jq -r --arg m "$marker" --arg a "$3" \
			"map(select($2 == \$a and (.body // \"\" | contains(\$m)))) | .[0].id // empty" "$tmp/response")
		if [ -n "$comment_id" ] || [ "$(jq length "$tmp/response")" -lt 100 ]; then return; fi
		page=$((page + 1))
	done
}

# upsert LIST_URL EDIT_URL EDIT_METHOD AUTHOR_FIELD AUTHOR edits our comment
# (EDIT_URL/ID) or posts one to LIST_URL; a plan without changes on a request
# that has no comment yet posts nothing.
upsert() {
	jq -Rs '{body: .}' <"$body" >"$tmp/payload.json"
	find_comment "$1" "$4" "$5"
	if [ -n "$comment_id" ]; then
		request "$3" "$2/$comment_id" "$tmp/payload.json"
		echo "pgsync-pr-plan: updated comment $comment_id" >&2
	elif [ "$rc" != 0 ]; then
		request POST "$1" "$tmp/payload.json"
		echo "pgsync-pr-plan: posted comment $(jq -r .id "$tmp/response")" >&2
	fi
}

case $platform in
github)
	# Listed under the pull request, edited by id under issues/comments.
	upsert "$issues/$PGSYNC_PR/comments" "$issues/comments" PATCH \
		.user.login "${PGSYNC_COMMENT_AUTHOR:-github-actions[bot]}"
	;;
gitlab)
	author=${PGSYNC_COMMENT_AUTHOR:-}
	if [ -z "$author" ]; then
		# A project access token's user is a generated bot: ask who we are.
		request GET "$CI_API_V4_URL/user"
		author=$(jq -r .username "$tmp/response")
	fi
	upsert "$notes" "$notes" PUT .author.username "$author"
	;;
esac

case $rc in
0 | 2) exit 0 ;;
*) exit 1 ;;
esac
