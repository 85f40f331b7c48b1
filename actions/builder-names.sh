# Run (bash) by the fnops actions before anything is built: the action's builder inputs in the
# CLI's vocabulary. `builder` is what builds (buildah | docker, as `fnops ship --builder`) and
# `buildx-builder` the buildx instance (`--buildx-builder`). The names the action had before still work,
# each with a warning: `tool` (buildah | docker) was the builder, and a `builder` that is not
# buildah or docker was a buildx instance (docker implied).
# In: FNOPS_TOOL, FNOPS_BUILDER_INPUT, FNOPS_BUILDX_BUILDER_INPUT. Out ($GITHUB_OUTPUT): builder, instance.
set -euo pipefail

esc() {  # a workflow command's data: %, CR and LF escaped (actions/toolkit escapeData)
  local v="${1//'%'/%25}"
  v="${v//$'\r'/%0D}"
  printf '%s' "${v//$'\n'/%0A}"
}
deprecated() {  # on stderr, as the actions' other workflow commands
  echo "::warning title=fnops deprecated input::$(esc "$1")" >&2
}
fail() {
  echo "::error title=fnops builder::$(esc "$1")" >&2
  exit 2
}
name_ok() { [[ "$1" =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$ ]]; }

builder="${FNOPS_BUILDER_INPUT:-buildah}"
instance="${FNOPS_BUILDX_BUILDER_INPUT:-}"
case "$builder" in
  buildah|docker) ;;
  *)
    name_ok "$builder" || fail "builder: '${builder}' is neither buildah nor docker (nor a buildx instance name)"
    deprecated "builder: ${builder} names a buildx instance (its old meaning). Write builder: docker and buildx-builder: ${builder} (builder is now what builds: buildah or docker, as fnops ship --builder)."
    [ -z "$instance" ] && instance="$builder"
    builder=docker
    ;;
esac
if [ -n "${FNOPS_TOOL:-}" ]; then
  case "$FNOPS_TOOL" in buildah|docker) ;; *) fail "tool: '${FNOPS_TOOL}' is neither buildah nor docker" ;; esac
  deprecated "tool: ${FNOPS_TOOL} is the old name of builder: write builder: ${FNOPS_TOOL}."
  builder="$FNOPS_TOOL"
fi
[ -z "$instance" ] || name_ok "$instance" || fail "buildx-builder: '${instance}' is not a buildx builder name"
if [ -n "$instance" ] && [ "$builder" != docker ]; then
  fail "buildx-builder: ${instance} is a buildx instance, for builder: docker (builder is ${builder})"
fi
{
  echo "builder=$builder"
  echo "instance=$instance"
} >> "$GITHUB_OUTPUT"
