#!/usr/bin/env bash
# Sourced by the Tekton catalog's test harness before tests/run.yaml: a store, its bucket and
# input object, and the Secret zot-artifacts-token (tekton/tests/catalog-store.sh).
# shellcheck source=../../../tests/catalog-store.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../../tests/catalog-store.sh"
