#!/usr/bin/env bash
# Create the action's private venv (once per action checkout and content) and print its python.
#
#   setup-venv.sh [extra...]     extra: sbom (cyclonedx-py), sigstore (keyless signing)
#
# Without arguments the extras follow the action's inputs: INPUT_SBOM_GENERATE=true -> sbom,
# INPUT_SIGNING_METHOD=sigstore -> sigstore. In a step, it also writes python=<path> to
# $GITHUB_OUTPUT.
#
# The venv lives beside this script, keyed on the hash of the pinned requirements and of the
# CLI and SDK sources, so a second step (or a second action of this repository) in the same job
# reuses it. Nothing is installed into the runner's Python: no setup-python side effects on the
# caller. Third-party packages come only from the hash-pinned requirements files
# (pip --require-hashes); the CLI and the SDK are built from this repository's cli/ and
# sdk/python/ with the pinned setuptools, without network access (--no-index).
# A released action pins them in requirements.txt instead, e.g.
#   zot-artifacts-cli==1.2.0 --hash=sha256:…   zot-artifacts==1.2.0 --hash=sha256:…
set -euo pipefail
shared=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$shared/../.." && pwd)
python=${ZAS_ACTION_PYTHON:-python3}
command -v "$python" >/dev/null 2>&1 || python=python
if ! "$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)' 2>/dev/null; then
  echo "::error title=zot-artifacts::the runner needs python3 >= 3.9 (found: $("$python" --version 2>&1 || echo none))" >&2
  exit 1
fi
hash=$(
  {
    cat "$shared/requirements.txt" "$repo/cli/pyproject.toml" "$repo/sdk/python/pyproject.toml"
    find "$repo/cli/zot_artifacts_cli" "$repo/sdk/python/zot_artifacts" -name '*.py' | LC_ALL=C sort | xargs cat
  } | "$python" -c 'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest()[:16])'
)
# ZAS_ACTION_VENV_ROOT (a runner-level setting, e.g. a tool cache) puts it elsewhere.
venv="${ZAS_ACTION_VENV_ROOT:-$shared}/.venv-$hash"
case "$(uname -s)" in MINGW* | MSYS* | CYGWIN* | Windows*) bin=Scripts ;; *) bin=bin ;; esac
if [ ! -f "$venv/.complete" ]; then
  # Built in place (pip's launchers name their interpreter by absolute path, so a venv cannot
  # be renamed after the fact); a lock directory keeps two concurrent steps apart. Its owner
  # file names the holder ("<pid> <host>"): a lock whose holder on this host is gone (a killed
  # setup), or any lock older than ZAS_ACTION_LOCK_STALE seconds, is taken over; after
  # ZAS_ACTION_LOCK_WAIT seconds of waiting for a live holder the step gives up.
  lock="$venv.lock"
  host=${HOSTNAME:-$(uname -n 2>/dev/null || echo localhost)}
  wait_limit=${ZAS_ACTION_LOCK_WAIT:-900}
  stale_after=${ZAS_ACTION_LOCK_STALE:-1800}
  alive() {
    if [ -d /proc/self ]; then [ -d "/proc/$1" ]; else kill -0 "$1" 2>/dev/null || ps -p "$1" >/dev/null 2>&1; fi
  }
  lock_age() {
    "$python" -c 'import os, sys, time; print(max(0, int(time.time() - os.stat(sys.argv[1]).st_mtime)))' "$lock" 2>/dev/null || echo 0
  }
  started=$SECONDS
  until mkdir "$lock" 2>/dev/null; do
    owner=$(cat "$lock/owner" 2>/dev/null || true)
    pid=${owner%% *}
    stale=""
    if [ -n "$owner" ] && [ "${owner#* }" = "$host" ] && [[ $pid =~ ^[0-9]+$ ]] && ! alive "$pid"; then
      stale="its holder (pid $pid) is gone"
    elif [ -d "$lock" ] && [ "$(lock_age)" -gt "$stale_after" ]; then
      stale="it is older than ${stale_after}s"
    fi
    if [ -n "$stale" ]; then
      # Moved aside first, so two waiters cannot both take it over: only one mv succeeds,
      # and a lock that changed hands meanwhile is put back.
      aside="$lock.stale.$$"
      if mv "$lock" "$aside" 2>/dev/null; then
        if [ "$(cat "$aside/owner" 2>/dev/null || true)" = "$owner" ]; then
          echo "::warning title=zot-artifacts::took over the venv lock $lock: $stale" >&2
          rm -rf "$aside"
        else
          mv "$aside" "$lock" 2>/dev/null || rm -rf "$aside"
        fi
      fi
      continue
    fi
    if [ $((SECONDS - started)) -ge "$wait_limit" ]; then
      echo "::error title=zot-artifacts::gave up after ${wait_limit}s waiting for the venv lock $lock (held by ${owner:-an unknown process}); if no setup is running, remove it" >&2
      exit 1
    fi
    sleep 1
  done
  echo "$$ $host" > "$lock/owner"
  release() {  # only a lock that is still ours (not taken over meanwhile)
    if [ "$(cat "$lock/owner" 2>/dev/null || true)" = "$$ $host" ]; then rm -rf "$lock"; fi
  }
  trap 'release 2>/dev/null || true' EXIT
  if [ ! -f "$venv/.complete" ]; then
    echo "::group::zot-artifacts: private venv ($venv)" >&2
    rm -rf "$venv"
    "$python" -m venv "$venv"
    pip=("$venv/$bin/python" -m pip --quiet --disable-pip-version-check --no-input)
    "${pip[@]}" install --require-hashes --only-binary :all: -r "$shared/requirements.txt" >&2
    # Built from copies, so the checkout gets no build/ or egg-info/ directories.
    src="$venv/src"
    mkdir -p "$src"
    cp -R "$repo/sdk/python" "$src/sdk"
    cp -R "$repo/cli" "$src/cli"
    rm -rf "$src"/*/build "$src"/*/*.egg-info
    "${pip[@]}" install --no-deps --no-build-isolation --no-index "$src/sdk" "$src/cli" >&2
    rm -rf "$src"
    touch "$venv/.complete"
    echo "::endgroup::" >&2
  fi
  release
  trap - EXIT
fi
extras=("$@")
if [ $# -eq 0 ]; then
  if [ "${INPUT_SBOM_GENERATE:-false}" = true ]; then extras+=(sbom); fi
  if [ "${INPUT_SIGNING_METHOD:-}" = sigstore ]; then extras+=(sigstore); fi
fi
for extra in ${extras[@]+"${extras[@]}"}; do
  stamp="$venv/.extra-$extra"
  [ -f "$stamp" ] && continue
  echo "::group::zot-artifacts: installing $extra" >&2
  "$venv/$bin/python" -m pip --quiet --disable-pip-version-check --no-input install \
    --require-hashes --only-binary :all: -r "$shared/requirements-$extra.txt" >&2
  touch "$stamp"
  echo "::endgroup::" >&2
done
echo "$venv/$bin/python"
if [ -n "${GITHUB_OUTPUT:-}" ]; then echo "python=$venv/$bin/python" >> "$GITHUB_OUTPUT"; fi
