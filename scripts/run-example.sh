#!/usr/bin/env bash
# Run the example project: migrate, make an admin/admin superuser, start a taskito worker
# in the background and the web server (uvicorn, ASGI: Django plus FastAPI) in the foreground.
#
#   bash scripts/run-example.sh          # http://127.0.0.1:8000/
#   PORT=8765 bash scripts/run-example.sh
#   TASKITO_EXAMPLE_DB=/tmp/example.sqlite3 bash scripts/run-example.sh   # another database file
#
# Ctrl-C (or SIGTERM to this script) stops both the server and the worker.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PORT="${PORT:-8000}"

bash "$ROOT/scripts/setup.sh"

cd "$ROOT/example_project"
PY="$ROOT/.venv/bin/python"
export PYTHONUNBUFFERED=1

echo "example: migrating ${TASKITO_EXAMPLE_DB:-example_project/db.sqlite3}"
"$PY" manage.py migrate --noinput -v 0

if out="$(DJANGO_SUPERUSER_PASSWORD=admin "$PY" manage.py createsuperuser --noinput \
    --username admin --email admin@example.com 2>&1)"; then
    echo "example: created superuser admin/admin"
elif grep -qi "already" <<<"$out"; then
    : # the superuser exists from an earlier run
else
    echo "$out" >&2
    echo "example: ERROR: could not create the superuser" >&2
    exit 1
fi

worker_pid=""
server_pid=""

stop() {
    # TERM each child's process group (its own, thanks to setsid) so the worker can
    # finish its current jobs, wait up to 15 s, then KILL what is left.
    local pid
    for pid in "$server_pid" "$worker_pid"; do
        [[ -n "$pid" ]] || continue
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "$server_pid" "$worker_pid"; do
        [[ -n "$pid" ]] || continue
        for _ in $(seq 1 150); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "example: process $pid did not stop in 15 s; killing it" >&2
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    server_pid="" worker_pid=""
}
on_signal() { exit 130; }  # the EXIT trap does the cleanup
trap stop EXIT
trap on_signal INT TERM HUP

# Each child gets its own process group (setsid), so stopping it also stops anything it
# spawned (worker processes).
setsid "$PY" manage.py taskito_worker &
worker_pid=$!

# Open progress streams (Server-Sent Events) never end by themselves: give them 5 s when
# stopping instead of waiting for every browser tab to close.
setsid "$PY" -m uvicorn example_project.asgi:application --host 127.0.0.1 --port "$PORT" \
    --timeout-graceful-shutdown 5 &
server_pid=$!

cat <<MSG

  taskito example project
    site:     http://127.0.0.1:$PORT/
    admin:    http://127.0.0.1:$PORT/admin/  (user admin, password admin)
    DRF API:  http://127.0.0.1:$PORT/tasks/stats  (staff: log in to the admin first)
    FastAPI:  http://127.0.0.1:$PORT/fastapi/tasks/stats  (staff too)
              http://127.0.0.1:$PORT/fastapi/docs
    server:   uvicorn example_project.asgi:application (pid $server_pid)
    worker:   python manage.py taskito_worker (pid $worker_pid)
  Press Ctrl-C to stop both.

MSG

# Wait for either one to stop; then stop the other (via the EXIT trap).
status=0
wait -n "$server_pid" "$worker_pid" || status=$?
if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "example: the web server exited (status $status)" >&2
else
    echo "example: the worker exited (status $status)" >&2
fi
exit "$status"
