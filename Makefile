# Two commands matter: `make serve` and `make test` (see README.md).
.PHONY: setup setup-serve serve test lint format bench clean image image-operator manifests actions mutation

setup:
	@bash scripts/setup.sh

# Serving installs the server only (Python and make); testing installs everything else.
setup-serve:
	@bash scripts/setup.sh serve

serve: setup-serve
	.venv/bin/zot-artifact-store serve $(ARGS)

# The suite runs under coverage (pyproject.toml [tool.coverage]: the server subprocesses and
# their workers are measured too); the report follows, and a full run (no ARGS) must reach
# fail_under. docs/testing.md records the numbers.
test: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	rm -rf .work/coverage && mkdir -p .work/coverage
	.venv/bin/coverage run -m pytest -n 2 --dist loadfile $(ARGS)
	.venv/bin/coverage combine --quiet
	.venv/bin/coverage report $(if $(ARGS),--fail-under=0)

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

format: setup
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

# The container image (Containerfile), with buildah. IMAGE names it; BASE replaces the base image.
IMAGE ?= localhost/zot-artifact-store:dev
BASE ?=
image: setup
	IMAGE=$(IMAGE) BASE=$(BASE) bash scripts/build-image.sh

# The operator's image: the Containerfile's `operator` target (deploy/operator).
OPERATOR_IMAGE ?= localhost/zot-artifact-store-operator:dev
image-operator: setup
	IMAGE=$(OPERATOR_IMAGE) BASE=$(BASE) TARGET=operator bash scripts/build-image.sh

# Mutation testing of auth/policy.py, auth/authz.py and auth/sigv4.py (mutmut), outside
# `make test`: slow; docs/testing.md records the score and the survivors.
mutation: setup
	bash scripts/mutation.sh $(ARGS)

bench: setup
	.venv/bin/python benchmarks/run.py $(ARGS)

clean:
	rm -rf .venv data .pytest_cache .ruff_cache

# The Kustomize manifests (deploy/kubernetes), the operator's manifests and OLM bundle
# (deploy/operator) and the values and CRD references in docs/deploy.md,
# generated from the Helm chart.
manifests: setup
	.venv/bin/python deploy/kubernetes/generate.py
	.venv/bin/python deploy/helm/values_reference.py
	.venv/bin/python deploy/operator/generate.py

# The root action.yml, from actions/upload-artifact/action.yml (one action, two addresses).
actions:
	python3 actions/generate.py
