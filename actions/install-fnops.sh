#!/usr/bin/env bash
# Install fnops for an action step, in a virtual environment of its own under $RUNNER_TEMP:
# the job's Python (whatever setup-python or the image gave the caller) is neither replaced
# nor installed into, and nothing is added to PATH or the job's environment. Exactly the
# versions and hashes of requirements.lock (--require-hashes), so a workflow pinned to an
# fnops commit runs the same dependencies on every run, whatever PyPI serves that day. A
# second fnops step in the same job (same lock, same Python) reuses the environment.
# Usage: install-fnops.sh <fnops checkout> <python>   (then `fnops=<path>` in $GITHUB_OUTPUT)
set -euo pipefail
src="${1:?usage: install-fnops.sh <fnops checkout> <python>}"
python="${2:?usage: install-fnops.sh <fnops checkout> <python>}"
if ! version="$("$python" -c 'import sys; assert sys.version_info >= (3, 11); print(sys.version)' 2>/dev/null)"; then
  echo "::error::fnops needs Python >= 3.11; '$python' is not one (set the action's python-version)"
  exit 1
fi
key="$({ cat "$src/requirements.lock"; printf '%s\n' "$src" "$python" "$version"; } | sha256sum | cut -c1-16)"
venv="${RUNNER_TEMP:?RUNNER_TEMP is not set}/fnops-$key"
if [ ! -f "$venv/.fnops-installed" ]; then
  rm -rf "$venv"
  pip() { "$venv/bin/python" -m pip --disable-pip-version-check --quiet "$@"; }
  if ! { "$python" -m venv "$venv" &&
         pip install --require-hashes --no-deps -r "$src/requirements.lock" &&
         pip install --no-deps --no-build-isolation "$src" &&
         touch "$venv/.fnops-installed"; }; then
    rm -rf "$venv"  # nothing half-installed is reused by a later step
    echo "::error::installing fnops from $src/requirements.lock failed (pip said why, above)" >&2
    exit 1
  fi
fi
echo "fnops=$venv/bin/fnops" >> "${GITHUB_OUTPUT:?GITHUB_OUTPUT is not set}"
