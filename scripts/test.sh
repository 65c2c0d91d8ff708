#!/usr/bin/env bash
# Lint, type-check and test taskito on every supported Django line.
#
#   bash scripts/test.sh [pytest args...]
#
# Lines (each in its own virtualenv made by scripts/setup.sh):
#   main   .venv        the newest Python >= 3.12 and the newest Django (6.1): ruff, mypy, tests
#   dj60   .venv-dj60   Python 3.13 + Django 6.0: tests
#   dj52   .venv-dj52   Python 3.12 + Django 5.2 LTS + the django-tasks backport: tests
# Each line runs the suite on a SQLite file; main runs it a second time on PostgreSQL when
# TASKITO_TEST_DATABASE_URL is set (e.g. postgres://postgres@127.0.0.1:5432/postgres), and a
# third time on MariaDB/MySQL when TASKITO_TEST_MYSQL_URL is set (e.g.
# mysql://root@127.0.0.1:3306/test).
# dj60 and dj52 skip PostgreSQL by default to keep .ci/run under 30 minutes on a 2-core
# machine (taskito's SQL is its own, the same on every Django line); TASKITO_PG_LINES adds them.
# Then, once (on dj52 when it runs), the packaging test (`-m packaging`): build the wheel,
# install it with pip into a fresh venv of that line's Python and Django, and run a new
# project through it.
#
# Coverage (coverage.py, configured in pyproject.toml): the database runs in
# TASKITO_COVERAGE_DBS of the lines in TASKITO_COVERAGE_LINES run under `coverage run`,
# worker subprocesses included
# (COVERAGE_PROCESS_START; `coverage combine` merges each process's data), and prints one
# line "coverage: LINE on DB: N% ..."; a whole-suite run below TASKITO_COVERAGE_FLOOR fails.
# The report per module is kept in test-output/LINE/coverage-DB/report.txt.
#
# Environment:
#   TASKITO_COVERAGE_LINES lines measured (default: "main"; "" for none)
#   TASKITO_COVERAGE_DBS   their database runs measured (default: "sqlite postgres"; add
#                          "mysql" for the MariaDB/MySQL run, which .ci/run leaves unmeasured
#                          to stay under 30 minutes: coverage slows a run by about half)
#   TASKITO_PROCESS_LINES  lines that run the worker-process tests (-m process; default:
#                          "main": the other lines check what differs between Django
#                          versions, and the packaging test runs a worker on the oldest)
#   TASKITO_COVERAGE_FLOOR the least line+branch coverage of taskito/ a run may have (percent)
#   TASKITO_LINES          lines to run (default: "main dj60 dj52"), e.g. TASKITO_LINES=main
#   TASKITO_PG_LINES       lines that also run on PostgreSQL (default: "main"; "main dj60
#                          dj52" for all)
#   TASKITO_MYSQL_LINES    lines that also run on MariaDB/MySQL (default: "main")
#   TASKITO_SKIP_PACKAGING set to 1 to skip the packaging test (it installs from the index)
#   TASKITO_PARALLEL_LINES set to 1 to run the first line's server runs in a second lane,
#                          beside the SQLite runs of every line (.ci/run does; the output of
#                          that lane is printed when it ends)
# Exits non-zero if any step fails; every step runs even after an earlier one failed.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

header() { printf '\n===== %s =====\n' "$*"; }

export PYTHONDONTWRITEBYTECODE="${PYTHONDONTWRITEBYTECODE:-1}"
DB_URL="${TASKITO_TEST_DATABASE_URL:-}"
MYSQL_URL="${TASKITO_TEST_MYSQL_URL:-}"
read -r -a LINES <<<"${TASKITO_LINES:-main dj60 dj52}"
PG_LINES=" ${TASKITO_PG_LINES-main} "
MYSQL_LINES=" ${TASKITO_MYSQL_LINES-main} "
COV_LINES=" ${TASKITO_COVERAGE_LINES-main} "
COV_FLOOR="${TASKITO_COVERAGE_FLOOR:-94}"
COV_DBS=" ${TASKITO_COVERAGE_DBS-sqlite postgres} "
PROCESS_LINES=" ${TASKITO_PROCESS_LINES-main} "
started=$SECONDS

failed=()
rc=0
run_step() {
    # run_step NAME CMD...: run CMD, remember NAME and the first non-zero exit code.
    local name="$1" status=0 t0=$SECONDS
    shift
    "$@" || status=$?
    echo "test: $name took $(( SECONDS - t0 )) s (exit $status)"
    if (( status != 0 )); then
        failed+=("$name (exit $status)")
        (( rc == 0 )) && rc=$status
    fi
    return 0
}

setup_line() {
    # setup_line LINE: make (or reuse) the line's venv; prints its path.
    local venv
    case "$1" in
        main) venv=.venv
              bash scripts/setup.sh >&2 || return 1 ;;
        dj60) venv=.venv-dj60
              TASKITO_VENV=$venv TASKITO_PYTHON_VERSION=3.13 TASKITO_DJANGO="Django>=6.0,<6.1" \
                  TASKITO_PACKAGES="" bash scripts/setup.sh >&2 || return 1 ;;
        dj52) venv=.venv-dj52
              TASKITO_VENV=$venv TASKITO_PYTHON_VERSION=3.12 TASKITO_DJANGO="Django>=5.2,<6.0" \
                  TASKITO_PACKAGES="django-tasks" bash scripts/setup.sh >&2 || return 1 ;;
        *) echo "test: unknown line '$1' (main, dj60, dj52)" >&2; return 1 ;;
    esac
    echo "$ROOT/$venv"
}

run_pytest() {
    # run_pytest LINE DB VENV WHOLE [pytest args...]: pytest in the caller's environment;
    # under coverage when LINE is measured (see the top): one summary line, and the floor when
    # WHOLE is 1 (the whole suite ran, no pytest args from the caller).
    local line="$1" db="$2" venv="$3" whole="$4" status=0 cov_status=0 total
    shift 4
    if [[ "$COV_LINES" != *" $line "* || "$COV_DBS" != *" $db "* ]]; then
        "$venv/bin/python" -m pytest "$@"
        return
    fi
    local data="$ROOT/test-output/$line/coverage-$db"
    rm -rf "$data" && mkdir -p "$data"
    local -a cov=(env COVERAGE_FILE="$data/.coverage" "$venv/bin/python" -m coverage)
    # A run measures the dialect of its own database: the other vendors' modules cannot run
    # there, so they are left out of its figure (each is measured by its own run).
    local omit
    case "$db" in
        sqlite) omit="*/taskito/db/postgresql.py,*/taskito/db/mysql.py" ;;
        mysql|mariadb) omit="*/taskito/db/sqlite.py,*/taskito/db/postgresql.py" ;;
        *) omit="*/taskito/db/sqlite.py,*/taskito/db/mysql.py" ;;
    esac
    env COVERAGE_PROCESS_START="$ROOT/pyproject.toml" "${cov[@]:1}" run -m pytest "$@" \
        || status=$?
    "${cov[@]}" combine -q "$data" >/dev/null 2>&1
    "${cov[@]}" report --precision=2 --omit="$omit" >"$data/report.txt" 2>&1
    total="$("${cov[@]}" report --format=total --precision=2 --omit="$omit" 2>/dev/null \
             || echo '?')"
    if [[ "$whole" == 1 ]]; then
        "${cov[@]}" report --fail-under="$COV_FLOOR" --omit="$omit" >/dev/null 2>&1 \
            || cov_status=$?
        echo "coverage: $line on $db: $total% of taskito/ but the other databases' dialects" \
            "(lines+branches, all processes)," \
            "floor $COV_FLOOR%$( (( cov_status )) && echo ': BELOW THE FLOOR')" \
            "(per module: ${data#"$ROOT/"}/report.txt)"
    else
        echo "coverage: $line on $db: $total% of taskito/ (a subset ran: no floor)"
    fi
    (( status )) && return "$status"
    return "$cov_status"
}

pytest_on() {
    # pytest_on LINE VENV DB_URL [pytest args...]: the suite on SQLite ("") or that database.
    local line="$1" venv="$2" url="$3"
    shift 3
    # Each line has its own SQLite file and server test databases, so lines never share one;
    # each database run its own directory and pytest temp dir: two lanes may run at once.
    local kind="${url%%:*}"
    [[ -z "$url" ]] && kind=sqlite
    local dir="$ROOT/test-output/$line" pg_name="${TASKITO_TEST_PG_NAME:-taskito_test}_$line"
    [[ "$kind" != sqlite ]] && dir="$dir-$kind"
    local whole=0
    (( $# == 0 )) && whole=1
    mkdir -p "$dir"
    # --durations: the slowest tests of each run, for whoever keeps .ci/run under 30 minutes
    local base=(-p no:cacheprovider --basetemp "$dir/tmp" --durations=10)
    if [[ -z "$url" ]]; then
        (unset TASKITO_TEST_DATABASE_URL; export TASKITO_TEST_DIR="$dir"
         run_pytest "$line" sqlite "$venv" "$whole" "${base[@]}" "$@")
    else
        (export TASKITO_TEST_DATABASE_URL="$url" TASKITO_TEST_PG_NAME="$pg_name" \
             TASKITO_TEST_DIR="$dir"
         run_pytest "$line" "$kind" "$venv" "$whole" "${base[@]}" "$@")
    fi
}

run_server() {
    # run_server LINE VENV URL [pytest args...]: the line's suite on a database server.
    local line="$1" venv="$2" url="$3" shown
    shift 3
    # Do not print a password that may be in the URL.
    shown="$(sed -E 's#(://[^:/@]+):[^@/]*@#\1:***@#' <<<"$url")"
    header "line $line: pytest on $shown"
    run_step "$line: pytest ($shown)" pytest_on "$line" "$venv" "$url" "$@"
}

run_line() {
    # run_line LINE [pytest args...]: set up the line's venv, then its steps.
    local line="$1" venv
    shift
    header "line $line: setup"
    if ! venv="$(setup_line "$line")"; then
        failed+=("$line: setup")
        rc=1
        return 0
    fi
    "$venv/bin/python" -c 'import sys, django
print("test: line %s: Python %s, Django %s" % (sys.argv[1], sys.version.split()[0],
                                              django.get_version()))' "$line"
    if [[ "$line" == main ]]; then
        header "line main: ruff check ."
        run_step "main: ruff" "$venv/bin/ruff" check .
        header "line main: mypy taskito"
        run_step "main: mypy" "$venv/bin/mypy" taskito
    fi
    if [[ "$PROCESS_LINES" != *" $line "* ]]; then
        set -- -m "not process and not packaging" "$@"
        echo "test: line $line leaves out the worker-process tests (TASKITO_PROCESS_LINES)"
    fi
    header "line $line: pytest on SQLite"
    run_step "$line: pytest (SQLite)" pytest_on "$line" "$venv" "" "$@"
    # With two lanes the first line's server runs go to the second lane (see below).
    [[ "$line" == "${SERVERS_MOVED:-}" ]] || run_servers "$line" "$venv" "$@"
}

run_servers() {
    # run_servers LINE VENV [pytest args...]: the line's runs on PostgreSQL and MariaDB/MySQL.
    local line="$1" venv="$2"
    shift 2
    if [[ -n "$DB_URL" && "$PG_LINES" == *" $line "* ]]; then
        run_server "$line" "$venv" "$DB_URL" "$@"
    fi
    if [[ -n "$MYSQL_URL" && "$MYSQL_LINES" == *" $line "* ]]; then
        run_server "$line" "$venv" "$MYSQL_URL" "$@"
    fi
}

# One lane runs every line's SQLite suite; with TASKITO_PARALLEL_LINES=1 (what .ci/run sets)
# the first line's server runs (PostgreSQL, MariaDB/MySQL) go one after another to a second
# lane beside it (a 2-core machine runs two suites in about the time of one and a half), each
# run with its own SQLite files and test databases. The second lane starts once the first
# line's set-up is done, and sets nothing up itself (apt and pip never race).
first="${LINES[0]:-}"
lane_log="$ROOT/test-output/lane2.log"
lane_failed="$ROOT/test-output/lane2.failed"
lane_pid=""
if [[ -n "$first" ]]; then
    if [[ "${TASKITO_PARALLEL_LINES:-0}" == 1 && ( -n "$DB_URL" || -n "$MYSQL_URL" ) ]]; then
        header "line $first: setup (before the second lane starts)"
        first_venv="$(setup_line "$first")" || first_venv=""
        mkdir -p "$ROOT/test-output"
        rm -f "$lane_failed"
        SERVERS_MOVED="$first"
        (
            failed=() rc=0
            if [[ -n "$first_venv" ]]; then
                run_servers "$first" "$first_venv" "$@"
            fi
            printf '%s\n' "${failed[@]}" >"$lane_failed"
            exit "$rc"
        ) >"$lane_log" 2>&1 &
        lane_pid=$!
        echo "test: line $first's server runs go in a second lane (output: $lane_log)"
        for line in "${LINES[@]}"; do run_line "$line" "$@"; done
    else
        for line in "${LINES[@]}"; do run_line "$line" "$@"; done
    fi
fi
if [[ -n "$lane_pid" ]]; then
    lane_rc=0
    wait "$lane_pid" || lane_rc=$?
    header "second lane (line $first on database servers), as it ran"
    cat "$lane_log"
    while IFS= read -r step; do
        [[ -n "$step" ]] && failed+=("$step")
    done <"$lane_failed" 2>/dev/null
    if (( lane_rc != 0 )); then
        (( ${#failed[@]} )) || failed+=("second lane (exit $lane_rc)")
        (( rc == 0 )) && rc=$lane_rc
    fi
fi

if [[ "${TASKITO_SKIP_PACKAGING:-0}" != 1 ]]; then
    # On the oldest line run (Python 3.12 + Django 5.2 LTS when it is among them): the fresh
    # venv gets that line's Python and Django.
    pk_line="${LINES[0]:-main}"
    for line in "${LINES[@]}"; do [[ "$line" == dj52 ]] && pk_line=dj52; done
    header "packaging (line $pk_line): wheel -> pip install into a fresh venv -> a new project"
    if venv="$(setup_line "$pk_line")"; then
        run_step "packaging" pytest_on packaging "$venv" "" -m packaging
    else
        failed+=("packaging: setup")
        rc=1
    fi
fi

echo
echo "test: all steps took $(( SECONDS - started )) s"
if (( ${#failed[@]} )); then
    {
        echo
        echo "test: FAILED steps:"
        printf '  - %s\n' "${failed[@]}"
    } >&2
    exit "$rc"
fi
exit 0
