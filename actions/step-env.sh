# Sourced (bash) by the fnops actions' steps, after their inputs are in the environment.

# The GitHub Actions cache service's URL and token, for this step only: the action's
# `runtime` step wrote them (NUL-separated KEY=VALUE) to a file of its own; they are read
# into this shell, the file is removed, and nothing reaches $GITHUB_ENV.
if [ -n "${FNOPS_RUNTIME_FILE:-}" ] && [ -f "$FNOPS_RUNTIME_FILE" ]; then
  while IFS= read -r -d '' kv; do
    case "$kv" in
      ACTIONS_RUNTIME_TOKEN=*|ACTIONS_RESULTS_URL=*|ACTIONS_CACHE_URL=*|ACTIONS_CACHE_SERVICE_V2=*) export "${kv?}" ;;
    esac
  done < "$FNOPS_RUNTIME_FILE"
  rm -f "$FNOPS_RUNTIME_FILE"
fi

# The action's one `token` input, under the name that says whose it is. The job's own GitHub
# token (the input's default) goes to fnops as GITHUB_TOKEN, which fnops sends only to the
# GitHub host that issued it ($GITHUB_SERVER_URL), never to another `gitops-repo` host; any
# other token is the user's choice for the remote they named, and stays GITOPS_TOKEN.
if [ "${FNOPS_TOKEN_IS_GITHUB_TOKEN:-}" = "true" ] && [ -n "${GITOPS_TOKEN:-}" ]; then
  export GITHUB_TOKEN="$GITOPS_TOKEN"
  unset GITOPS_TOKEN
fi

# `approved: true` is the workflow's word that reviewers approved this job; fnops cannot check
# it (GitHub's API for an Environment's protection rules is not one fnops is built against),
# so every use says what it relies on, on stderr (the stream build output is fenced on).
approved_warning() {
  local where=""
  case "${FNOPS_REPO_VISIBILITY:-}" in
    private|internal) where=" This repository is ${FNOPS_REPO_VISIBILITY}: there, Environments have required reviewers only on GitHub Enterprise." ;;
  esac
  echo "::warning title=fnops approval::approved: true - fnops pushes pins into environments with approval: required on this workflow's word that a reviewer approved this job, which it cannot check. That holds only if the job runs in a GitHub Environment with Required reviewers and Prevent self-review (Settings → Environments → the environment), created before the workflow first ran.${where} Otherwise use mode: pr." >&2
}
