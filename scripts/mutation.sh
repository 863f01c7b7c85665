#!/usr/bin/env bash
# Mutation testing (mutmut) of the security decision code: auth/policy.py, auth/authz.py and
# auth/sigv4.py, against their unit and property tests. Not part of `make test` (it takes
# minutes to hours, depending on the machine); `make mutation` runs it, docs/testing.md records
# the last score and the surviving mutants worth knowing about.
#
# mutmut imports the code it mutates from ./, src/ or source/, so the run happens in a copy
# laid out that way (.work/mutation/src/zot_artifact_store, .work/mutation/tests), with a
# [tool.mutmut] section appended to the copy of pyproject.toml. Arguments go to `mutmut run`
# (e.g. a mutant name glob to rerun some).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=.work/mutation
mkdir -p "$work/src"
rm -rf "$work/src/zot_artifact_store" "$work/tests"
cp -r server/zot_artifact_store "$work/src/"
tar --exclude=node_modules --exclude=__pycache__ -cf - tests | tar -C "$work" -xf -
cp pyproject.toml "$work/pyproject.toml"
cat >>"$work/pyproject.toml" <<'EOF'

[tool.mutmut]
source_paths = ["src"]
only_mutate = [
  "src/zot_artifact_store/auth/policy.py",
  "src/zot_artifact_store/auth/authz.py",
  "src/zot_artifact_store/auth/sigv4.py",
]
pytest_add_cli_args_test_selection = [
  "tests/unit/test_sigv4.py",
  "tests/unit/test_prop_sigv4.py",
  "tests/unit/test_awschunked.py",
  "tests/unit/test_prop_awschunked.py",
  "tests/unit/test_prop_policy.py",
]
pytest_add_cli_args = ["-p", "no:xdist", "-p", "no:cacheprovider", "-q"]
EOF
cd "$work"
# The worktree's PYTHONPATH (.wtenv) would import the unmutated code first.
env -u PYTHONPATH "$root/.venv/bin/mutmut" run --max-children 2 "$@"
env -u PYTHONPATH "$root/.venv/bin/mutmut" results --all true >results.txt || true
awk '{print $NF}' results.txt | sort | uniq -c
