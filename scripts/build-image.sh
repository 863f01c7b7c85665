#!/usr/bin/env bash
# Build the container image (Containerfile) with buildah: `make image [IMAGE=…] [BASE=…]`.
#
# The wheels of every dependency are fetched on this host into build/wheelhouse first (the
# host's pip, its index and its certificates) and installed offline in the build, so the build
# downloads nothing and the same wheelhouse gives the same image. When the host's Python is not
# 3.11 the wheelhouse would not fit the image's Python: then (or with WHEELHOUSE=0) the build
# downloads from PyPI itself.
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE=${IMAGE:-localhost/zot-artifact-store:dev}
BASE=${BASE:-}
# TARGET=operator builds the operator image (the Containerfile's `operator` stage). The server
# image is named as its stage too: buildah 1.28 leaves a mounted working container behind when
# it builds the Containerfile's last stage, which is a bare `FROM server`.
TARGET=${TARGET:-server}
WHEELHOUSE=${WHEELHOUSE:-1}
PYTHON=${PYTHON:-.venv/bin/python}
BUILDAH=${BUILDAH:-buildah}

if ! command -v "$BUILDAH" >/dev/null 2>&1; then
  echo "image: buildah is not installed (Debian/Ubuntu: apt-get install buildah; Fedora/RHEL:" \
    "dnf install buildah). With Podman or Docker instead:" >&2
  echo "  podman build -f Containerfile -t $IMAGE ." >&2
  echo "  docker buildx build -f Containerfile -t $IMAGE ." >&2
  exit 1
fi

args=(--build-arg "VERSION=$("$PYTHON" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')")
args+=(--build-arg "REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)")
[ -n "$BASE" ] && args+=(--build-arg "BASE=$BASE")
# The server's object-store extras are in the image (Containerfile ARG EXTRAS).
project=".[azure,gcs]"
if [ -n "$TARGET" ]; then
  args+=(--target "$TARGET")
  [ "$TARGET" = operator ] && project=".[operator,azure,gcs]"
fi

if [ "$WHEELHOUSE" = 1 ] && "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  rm -rf build/wheelhouse
  mkdir -p build/wheelhouse
  "$PYTHON" -m pip wheel --quiet --disable-pip-version-check --wheel-dir build/wheelhouse \
    "$project" ./sdk/python ./cli setuptools wheel 2> >(grep -v "is ignored: it is neither a file" >&2)
  # Our own three are built inside the image from the sources; only dependencies come from here.
  rm -f build/wheelhouse/zot_artifact_store-* build/wheelhouse/zot_artifacts-* \
    build/wheelhouse/zot_artifacts_cli-*
  args+=(--build-arg PIP_NO_INDEX=true)
else
  rm -rf build/wheelhouse
fi

start=$(date +%s)
"$BUILDAH" bud --isolation chroot --layers -f Containerfile -t "$IMAGE" "${args[@]}" .
echo "image: built $IMAGE in $(($(date +%s) - start)) s"
