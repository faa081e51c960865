# shellcheck shell=bash
# Throwaway PostgreSQL for scripts/test, scripts/dev and scripts/bench.
#
# pg_start DIR   -> initdb + pg_ctl start in DIR on a free port; exports DATABASE_URL
# pg_stop        -> stops it (safe to call twice); callers trap it on EXIT
#
# Finds initdb/pg_ctl on PATH or under /usr/lib/postgresql/*/bin; installs the Debian packages
# when root and none are found; otherwise stops with a clear message.

pg_find_bin() {
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v initdb)"
    return 0
  fi
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return 0; fi
  done
  return 1
}

pg_install() {
  if [ "$(id -u)" != "0" ]; then
    echo "error: PostgreSQL server binaries (initdb, pg_ctl) not found; install postgresql (e.g. apt-get install postgresql) or set DATABASE_URL" >&2
    return 1
  fi
  echo "==> installing PostgreSQL (apt-get)" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) || {
    echo "error: apt-get install postgresql failed; install it by hand or set DATABASE_URL" >&2
    return 1
  }
}

pg_free_port() {
  python3 - <<'PY' 2>/dev/null || echo $(( 20000 + RANDOM % 20000 ))
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
}

PG_DIR=""
PG_BIN=""

pg_start() {
  PG_DIR="$1"
  PG_BIN="$(pg_find_bin)" || { pg_install && PG_BIN="$(pg_find_bin)"; } || return 1
  mkdir -p "$PG_DIR"
  local run_as=()
  # initdb refuses to run as root: use the postgres system user when we are root.
  if [ "$(id -u)" = "0" ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    chown -R postgres "$PG_DIR"
    # mktemp -d makes 0700 directories: let the postgres user traverse the parents to its data.
    local d; d="$(dirname "$PG_DIR")"
    while [ "$d" != "/" ]; do chmod o+x "$d" 2>/dev/null || true; d="$(dirname "$d")"; done
    run_as=(runuser -u postgres --)
  fi
  local port; port="$(pg_free_port)"
  "${run_as[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -U linkplane --auth=trust -E UTF8 >"$PG_DIR/initdb.log" 2>&1 || {
    echo "error: initdb failed, see $PG_DIR/initdb.log" >&2; cat "$PG_DIR/initdb.log" >&2; return 1; }
  "${run_as[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -w -t 60 \
    -o "-p $port -k $PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=400 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >/dev/null || { echo "error: postgres did not start, see $PG_DIR/postgres.log" >&2; cat "$PG_DIR/postgres.log" >&2; return 1; }
  export DATABASE_URL="postgres://linkplane@127.0.0.1:$port/postgres"
  PG_RUN_AS="${run_as[*]}"
}

pg_stop() {
  if [ -n "$PG_DIR" ] && [ -d "$PG_DIR/data" ]; then
    ${PG_RUN_AS:-} "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
    PG_DIR=""
  fi
}
