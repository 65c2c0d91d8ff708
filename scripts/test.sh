#!/usr/bin/env bash
# Lint, type-check and test taskito.
#
#   bash scripts/test.sh [pytest args...]
#
# Runs scripts/setup.sh, then `ruff check .`, `mypy taskito` and pytest on SQLite.
# When TASKITO_TEST_DATABASE_URL is set (e.g. postgres://postgres@127.0.0.1:5432/postgres)
# the test suite runs a second time against that database.
# Exits non-zero if any step fails; every step runs even after an earlier one failed.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

header() { printf '\n===== %s =====\n' "$*"; }

bash scripts/setup.sh || { echo "test: setup failed" >&2; exit 1; }

export PATH="$ROOT/.venv/bin:$PATH"
export PYTHONDONTWRITEBYTECODE="${PYTHONDONTWRITEBYTECODE:-1}"

failed=()
rc=0
run_step() {
    # run_step NAME CMD...: run CMD, remember NAME and the first non-zero exit code.
    local name="$1" status=0
    shift
    "$@" || status=$?
    if (( status != 0 )); then
        failed+=("$name (exit $status)")
        (( rc == 0 )) && rc=$status
    fi
    return 0
}

header "ruff check ."
run_step "ruff" ruff check .

header "mypy taskito"
run_step "mypy" mypy taskito

DB_URL="${TASKITO_TEST_DATABASE_URL:-}"

header "pytest on SQLite"
run_step "pytest (SQLite)" env -u TASKITO_TEST_DATABASE_URL pytest "$@"

if [[ -n "$DB_URL" ]]; then
    # Do not print a password that may be in the URL.
    shown="$(sed -E 's#(://[^:/@]+):[^@/]*@#\1:***@#' <<<"$DB_URL")"
    header "pytest on $shown"
    run_step "pytest ($shown)" env TASKITO_TEST_DATABASE_URL="$DB_URL" pytest "$@"
fi

if (( ${#failed[@]} )); then
    {
        echo
        echo "test: FAILED steps:"
        printf '  - %s\n' "${failed[@]}"
    } >&2
    exit "$rc"
fi
exit 0
