#!/usr/bin/env bash
# Create .venv and install (idempotent):
#   scripts/setup.sh          the server, CLI, Python SDK and every test tool (make test)
#   scripts/setup.sh serve    the server only (make serve): Python, nothing else
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
MODE=${1:-test}

if [ "$MODE" = serve ]; then
  if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
    echo "setup: Python >= 3.11 is required (found $("$PYTHON" --version 2>&1))" >&2
    exit 1
  fi
  if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
    echo "setup: Python's venv module is missing (Debian/Ubuntu: apt-get install python3-venv)" >&2
    exit 1
  fi
  [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
  # .zas-serve: the server is installed for this pyproject.toml (the full set-up writes it too).
  want=$(sha256sum pyproject.toml | cut -d' ' -f1)
  if [ "$(cat .venv/.zas-serve 2>/dev/null)" != "$want" ]; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e .
    echo "$want" > .venv/.zas-serve
  fi
  exit 0
fi

# Debian packages: venv support, and the real S3 clients the end-to-end tests drive.
debs=()
python3 -c 'import ensurepip, venv' 2>/dev/null || debs+=(python3-venv)
# buildah and mmdebstrap build and run the container image in tests/image; jq is in the docs'
# examples (tests/integration/test_docs.py).
for pair in aws:awscli s3cmd:s3cmd rclone:rclone curl:curl skopeo:skopeo openssl:openssl jq:jq \
  buildah:buildah mmdebstrap:mmdebstrap; do
  [ -x "/usr/bin/${pair%%:*}" ] || debs+=("${pair#*:}")
done
# mmdebstrap makes the image tests' Debian base; elsewhere than Debian it needs Debian's keyring.
[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || debs+=(debian-archive-keyring)
# tests/deploy render the Kustomize manifests with `kubectl kustomize` (kubectl >= 1.27; Debian
# bookworm's kubernetes-client is 1.20, too old for them): not installed here, only named.
command -v kubectl >/dev/null 2>&1 ||
  echo "setup: kubectl (>= 1.27) is missing: tests/deploy/test_kustomize.py needs it" >&2
# The Go SDK (sdk/go, standard library only) is built and tested with Debian's Go (>= 1.19).
command -v go >/dev/null 2>&1 || debs+=(golang-go)
# Node runs the OpenID provider the identity tests start.
command -v npm >/dev/null 2>&1 || debs+=(nodejs npm)
# Headless Chromium runs the JavaScript SDK in a browser (tests/integration/test_sdk_browser.py).
command -v chromium >/dev/null 2>&1 || debs+=(chromium)
if [ ${#debs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing Debian packages: ${debs[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${debs[@]}" >/dev/null
  else
    echo "setup: please install these Debian packages (the tests need them): ${debs[*]}" >&2
  fi
fi
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
  echo "setup: Python >= 3.11 is required (found $("$PYTHON" --version 2>&1))" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.zas-installed
want=$(cat pyproject.toml sdk/python/pyproject.toml cli/pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  # The SDK and the CLI are their own distributions (publishable alone); all three editable here.
  .venv/bin/python -m pip install --quiet -e ".[dev]"
  .venv/bin/python -m pip install --quiet -e sdk/python -e cli
  echo "$want" > "$stamp"
  sha256sum pyproject.toml | cut -d' ' -f1 > .venv/.zas-serve
fi

# Node packages, each pinned by its lock file: the OpenID provider the identity tests start
# (tests/fixtures/oidc), Azurite for the Azure Blob backend's tests (tests/fixtures/azurite),
# tekton-lint for the CI suite's lint test (tests/ci/tekton-lint), the JavaScript SDK's
# build and test tools (sdk/js) and axe-core for the web UI's accessibility check
# (tests/fixtures/axe).
for node in tests/fixtures/oidc tests/fixtures/azurite tests/ci/tekton-lint sdk/js tests/fixtures/axe; do
  if [ ! -f "$node/node_modules/.package-lock.json" ] || [ "$node/package-lock.json" -nt "$node/node_modules/.package-lock.json" ]; then
    (cd "$node" && npm ci --no-audit --no-fund --loglevel=error)
  fi
done
