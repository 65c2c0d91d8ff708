#!/usr/bin/env bash
# Create (or reuse) the project's virtualenv at .venv and install taskito into it in
# editable mode with the development extras.
#
# Idempotent and quick when nothing changed: the pip step is skipped while the stamp
# in the venv records the same extras, Django spec, extra packages and pyproject.toml.
#
# Environment:
#   TASKITO_VENV      the virtualenv's path (default: .venv), e.g. .venv-dj52 for a CI line
#   TASKITO_PYTHON    interpreter to use instead of searching for one (must be >= 3.12),
#                     e.g. "env PYENV_VERSION=3.12.1 python3.12"
#   TASKITO_PYTHON_VERSION  search only for this X.Y (e.g. 3.12), on PATH and in pyenv; an
#                     existing venv on another version is recreated
#   TASKITO_DJANGO    a Django requirement to install with it (default: the newest that
#                     pyproject allows), e.g. "Django>=5.2,<6.0"
#   TASKITO_PACKAGES  more requirements, space-separated, e.g. "django-tasks"
#   TASKITO_EXTRAS    extras to install (default: dev), e.g. "dev,postgres,rest"
#   TASKITO_VERBOSE   set to 1 to show pip's output
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

VENV="${TASKITO_VENV:-$ROOT/.venv}"
[[ "$VENV" == /* ]] || VENV="$ROOT/$VENV"
DJANGO_SPEC="${TASKITO_DJANGO:-}"
read -r -a MORE_PACKAGES <<<"${TASKITO_PACKAGES:-}"
EXTRAS="${TASKITO_EXTRAS-dev}"
VERBOSE="${TASKITO_VERBOSE:-0}"
STAMP="$VENV/.taskito-setup-stamp"
PY_CHECK='import sys; assert sys.version_info >= (3, 12)'
WANT_VERSION="${TASKITO_PYTHON_VERSION:-}"
if [[ -n "$WANT_VERSION" ]]; then
    [[ "$WANT_VERSION" =~ ^3\.([0-9]+)$ ]] && (( BASH_REMATCH[1] >= 12 )) \
        || { echo "setup: ERROR: TASKITO_PYTHON_VERSION must be 3.12 or later, like 3.12" >&2
             exit 1; }
    PY_CHECK="import sys; assert sys.version_info[:2] == (3, ${WANT_VERSION#3.})"
fi
PY_VERSION='import sys; print("%d %d %d" % sys.version_info[:3])'

say() { [[ "$VERBOSE" == 1 ]] && echo "setup: $*" >&2 || true; }
die() { echo "setup: ERROR: $*" >&2; exit 1; }

# --- find a Python >= 3.12 (or exactly TASKITO_PYTHON_VERSION) ---------------------------
# Each candidate is a command line (words separated by spaces); the newest one that
# actually runs and passes PY_CHECK wins.
candidates=()
if [[ -n "${TASKITO_PYTHON:-}" ]]; then
    candidates+=("$TASKITO_PYTHON")
else
    names=(python3.14 python3.13 python3.12)
    [[ -n "$WANT_VERSION" ]] && names=("python$WANT_VERSION")
    for name in "${names[@]}"; do
        command -v "$name" >/dev/null 2>&1 && candidates+=("$name")
    done
    if command -v pyenv >/dev/null 2>&1; then
        # Newest first; keep only plain CPython versions X.Y[.Z][suffix] with X.Y >= 3.12.
        while IFS= read -r v; do
            if [[ "$v" =~ ^([0-9]+)\.([0-9]+) ]]; then
                major="${BASH_REMATCH[1]}" minor="${BASH_REMATCH[2]}"
                if [[ -n "$WANT_VERSION" && "$major.$minor" != "$WANT_VERSION" ]]; then
                    continue
                fi
                if (( major > 3 || (major == 3 && minor >= 12) )); then
                    candidates+=("env PYENV_VERSION=$v python$major.$minor")
                fi
            fi
        done < <(pyenv versions --bare 2>/dev/null | sort -rV)
    fi
fi

find_python() {
    local best="" best_key=0 cand out key
    for cand in "${candidates[@]}"; do
        # shellcheck disable=SC2086  # candidates are command lines on purpose
        if $cand -c "$PY_CHECK" >/dev/null 2>&1 \
            && out="$($cand -c "$PY_VERSION" 2>/dev/null)"; then
            read -r ma mi pa <<<"$out"
            key=$(( ma * 1000000 + mi * 1000 + pa ))
            say "candidate '$cand' works (Python $ma.$mi.$pa)"
            if (( key > best_key )); then best="$cand" best_key=$key; fi
        else
            say "candidate '$cand' does not work"
        fi
    done
    [[ -n "$best" ]] || return 1
    echo "$best"
}

# --- the virtualenv ---------------------------------------------------------------------
if [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c "$PY_CHECK" >/dev/null 2>&1; then
    say "reusing $VENV ($("$VENV/bin/python" -V 2>&1))"
else
    if [[ -e "$VENV" ]]; then
        echo "setup: $VENV is broken or not on Python ${WANT_VERSION:-3.12+}; recreating it" >&2
        rm -rf "$VENV"
    fi
    PYTHON="$(find_python)" || die "no working Python ${WANT_VERSION:->= 3.12} found (tried: ${candidates[*]:-nothing}).
Install one (e.g. 'pyenv install 3.13') or point TASKITO_PYTHON at it."
    say "creating $VENV with '$PYTHON'"
    # shellcheck disable=SC2086
    $PYTHON -m venv "$VENV" || die "'$PYTHON -m venv $VENV' failed"
    "$VENV/bin/python" -c "$PY_CHECK" || die "the new virtualenv's python does not work"
    echo "setup: created $VENV with $("$VENV/bin/python" -V 2>&1)" >&2
fi

# --- Debian's chromium, for the browser tests ------------------------------------------
# tests/browser drive /usr/bin/chromium through Playwright (never `playwright install`, which
# downloads a browser build of its own). Install it with apt-get when it is missing; where
# apt-get (or root) is not available, warn: the browser tests then skip and say why.
# TASKITO_SKIP_CHROMIUM=1 skips this step.
ensure_chromium() {
    [[ "${TASKITO_SKIP_CHROMIUM:-0}" == 1 ]] && return 0
    if [[ -x /usr/bin/chromium ]] || command -v chromium >/dev/null 2>&1; then
        return 0
    fi
    local why="" log
    local -a sudo=()
    if ! command -v apt-get >/dev/null 2>&1; then
        why="apt-get is not available"
    elif (( EUID != 0 )); then
        if command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
            sudo=(sudo -n)
        else
            why="installing it needs root (or password-less sudo)"
        fi
    fi
    if [[ -n "$why" ]]; then
        echo "setup: WARNING: chromium is not installed and $why; the browser tests will be" \
            "skipped (install Debian's chromium to run them)" >&2
        return 0
    fi
    echo "setup: installing Debian's chromium for the browser tests (apt-get, about a minute)" >&2
    log="$(mktemp)"
    if "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >"$log" 2>&1 \
        && "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
            >>"$log" 2>&1; then
        echo "setup: chromium installed ($(/usr/bin/chromium --version 2>/dev/null || echo '?'))" >&2
    else
        echo "setup: WARNING: apt-get could not install chromium; the browser tests will be" \
            "skipped. Its last lines:" >&2
        tail -n 15 "$log" >&2
    fi
    rm -f "$log"
}
ensure_chromium

# --- Debian's pgbouncer, for the tests of PostgreSQL behind a transaction pooler ---------
# tests/process/test_pgbouncer.py starts its own PgBouncer on a free port (nothing is
# configured system-wide). Install it with apt-get when it is missing; without root or
# apt-get, warn: those tests then skip and say why. TASKITO_SKIP_PGBOUNCER=1 skips this step.
ensure_pgbouncer() {
    [[ "${TASKITO_SKIP_PGBOUNCER:-0}" == 1 ]] && return 0
    if command -v pgbouncer >/dev/null 2>&1 || [[ -x /usr/sbin/pgbouncer ]]; then
        return 0
    fi
    local -a sudo=()
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "setup: WARNING: pgbouncer is not installed and apt-get is not available; the" \
            "PgBouncer tests will be skipped" >&2
        return 0
    fi
    if (( EUID != 0 )); then
        if command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
            sudo=(sudo -n)
        else
            echo "setup: WARNING: pgbouncer is not installed and installing it needs root" \
                "(or password-less sudo); the PgBouncer tests will be skipped" >&2
            return 0
        fi
    fi
    echo "setup: installing Debian's pgbouncer for the PgBouncer tests (apt-get)" >&2
    local log
    log="$(mktemp)"
    if ! { "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer \
               >"$log" 2>&1 \
           || { "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
                && "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
                       pgbouncer; } >>"$log" 2>&1; }; then
        echo "setup: WARNING: apt-get could not install pgbouncer; the PgBouncer tests will" \
            "be skipped. Its last lines:" >&2
        tail -n 15 "$log" >&2
    fi
    rm -f "$log"
}
ensure_pgbouncer

# --- MariaDB's client library, for mysqlclient (the dev extra's MariaDB/MySQL driver) ----
# mysqlclient has no Linux wheels: pip compiles it against libmariadb-dev, found through
# pkg-config. Install it with apt-get when it is missing (needs root or password-less sudo).
ensure_mariadb_headers() {
    [[ ",$EXTRAS," == *",dev,"* || ",$EXTRAS," == *",mysql,"* ]] || return 0
    if pkg-config --exists libmariadb 2>/dev/null || pkg-config --exists mysqlclient 2>/dev/null
    then
        return 0
    fi
    local -a sudo=()
    if (( EUID != 0 )) && command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
        sudo=(sudo -n)
    fi
    echo "setup: installing Debian's libmariadb-dev for mysqlclient (apt-get)" >&2
    local log
    log="$(mktemp)"
    if ! { "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
               libmariadb-dev pkg-config >"$log" 2>&1 \
           || { "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
                && "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
                       libmariadb-dev pkg-config; } >>"$log" 2>&1; }; then
        echo "setup: WARNING: apt-get could not install libmariadb-dev; pip will fail to" \
            "build mysqlclient. Its last lines:" >&2
        tail -n 15 "$log" >&2
    fi
    rm -f "$log"
}
ensure_mariadb_headers

# --- install taskito (editable) ---------------------------------------------------------
if [[ -n "$EXTRAS" ]]; then
    TARGET=".[$EXTRAS]"
else
    TARGET="."
fi
# taskito/__init__.py is part of the stamp: an editable install made while it was missing
# maps taskito as a namespace package and must be redone once it exists.
has_init=no
[[ -f taskito/__init__.py ]] && has_init=yes
want_stamp="extras=$EXTRAS django=$DJANGO_SPEC packages=${MORE_PACKAGES[*]:-} init=$has_init \
pyproject=$(sha256sum pyproject.toml | cut -d' ' -f1)"

installed_ok() {
    # The stamp matches and the package can still be found from outside the repo
    # (catches an editable install made before taskito/ existed, or a removed one).
    [[ -f "$STAMP" ]] && [[ "$(cat "$STAMP")" == "$want_stamp" ]] \
        && (cd / && "$VENV/bin/python" -c \
            'import importlib.util, sys; sys.exit(importlib.util.find_spec("taskito") is None)') \
            >/dev/null 2>&1
}

if installed_ok; then
    say "taskito$([[ -n "$EXTRAS" ]] && echo "[$EXTRAS]") already installed; skipping pip"
    exit 0
fi

[[ -f pyproject.toml ]] || die "pyproject.toml not found in $ROOT"

rm -f "$STAMP"
export PIP_DISABLE_PIP_VERSION_CHECK=1
# The distribution was called `taskito` before it became `django-taskito` (and the index's
# `taskito` is another project with the same import name): remove it, or two installs
# would claim the `taskito` package.
if "$VENV/bin/python" -m pip show -q taskito >/dev/null 2>&1; then
    echo "setup: removing the distribution 'taskito' from $VENV (this project is django-taskito)" >&2
    "$VENV/bin/python" -m pip uninstall -y -q taskito >/dev/null 2>&1 \
        || die "could not uninstall the distribution 'taskito' from $VENV"
fi
PIP=("$VENV/bin/python" -m pip install -e "$TARGET")
[[ -n "$DJANGO_SPEC" ]] && PIP+=("$DJANGO_SPEC")
(( ${#MORE_PACKAGES[@]} )) && PIP+=("${MORE_PACKAGES[@]}")
echo "setup: installing into $VENV: pip install -e ${PIP[*]:5}" >&2
if [[ "$VERBOSE" == 1 ]]; then
    "${PIP[@]}" || status=$?
else
    log="$(mktemp)"
    "${PIP[@]}" -q >"$log" 2>&1 || status=$?
fi
if (( ${status:-0} != 0 )); then
    if [[ "$VERBOSE" != 1 ]]; then
        echo "----- pip output -----" >&2
        cat "$log" >&2
        echo "----------------------" >&2
        rm -f "$log"
    fi
    if [[ ! -f taskito/__init__.py ]]; then
        die "pip install failed (exit $status); note that taskito/__init__.py does not exist \
yet in $ROOT (the package is still being written?)"
    fi
    die "pip install -e '$TARGET' failed (exit $status); see the output above"
fi
[[ "$VERBOSE" == 1 ]] || rm -f "$log"

# An editable install whose package could not be found is no install at all.
if ! (cd / && "$VENV/bin/python" -c 'import importlib.util, sys
sys.exit(importlib.util.find_spec("taskito") is None)') >/dev/null 2>&1; then
    die "pip succeeded but 'taskito' cannot be imported from the venv; does taskito/__init__.py \
exist in $ROOT?"
fi

echo "$want_stamp" >"$STAMP"
if [[ "$has_init" == no ]]; then
    echo "setup: WARNING: taskito/__init__.py does not exist yet; installed anyway (the next" \
        "run reinstalls once it exists)" >&2
fi
echo "setup: done ($("$VENV/bin/python" -V 2>&1), Django $("$VENV/bin/python" -c \
    'import django; print(django.get_version())' 2>/dev/null || echo '?'), $VENV ready)" >&2
