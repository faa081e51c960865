# shellcheck shell=bash
# Compile-time-checked SQL: the offline query data in .sqlx/ (see docs/development.md).
#
# The store's queries are sqlx's `query!` macros. Every build reads their column and parameter
# types from .sqlx/ (`.cargo/config.toml` sets SQLX_OFFLINE=true), so no build needs a database.
# Regenerating that data is what `cargo sqlx prepare` does, done here without sqlx-cli (a
# 4-minute `cargo install` that CI cannot cache): build once with the macros online against a
# freshly migrated database and SQLX_OFFLINE_DIR set, which makes every macro write its
# `query-<hash>.json` there.
#
# sqlx_database ADMIN_URL NAME  -> (re)creates database NAME on ADMIN_URL's server, applies
#                                  migrations/*.sql in order, prints its URL
# sqlx_touch                    -> marks every file holding a query macro changed, so the next
#                                  build expands the macros again
# sqlx_packages                 -> `-p PKG` for each package holding a query macro
# sqlx_compare DIR              -> fails unless DIR holds exactly the files of .sqlx/, byte for byte

# Files with a query macro (`query!`, `query_as!`, `query_scalar!`, their `_unchecked` forms).
sqlx_macro_files() {
  grep -rlE 'sqlx::query(_as|_scalar)?(_unchecked)?!' --include='*.rs' \
    core store kubesim mirror gitops schema cli server tests 2>/dev/null || true
}

sqlx_packages() {
  local dir
  for dir in $(sqlx_macro_files | cut -d/ -f1 | sort -u); do
    printf -- '-p %s ' "$(sed -n 's/^name = "\(.*\)"$/\1/p' "$dir/Cargo.toml" | head -1)"
  done
}

sqlx_touch() {
  local files
  files="$(sqlx_macro_files)"
  [ -z "$files" ] || touch $files
}

# psql from PATH, else next to the server binaries scripts/lib/postgres.sh finds.
sqlx_psql() {
  if command -v psql >/dev/null 2>&1; then
    command -v psql
  else
    local bin
    bin="$(pg_find_bin)" || { echo "error: psql not found (apt-get install postgresql-client)" >&2; return 1; }
    echo "$bin/psql"
  fi
}

sqlx_database() {
  local admin_url="$1" name="$2" psql
  psql="$(sqlx_psql)" || return 1
  # ADMIN_URL with its database replaced by NAME (query string kept), as Store::recreate_database.
  local base="${admin_url%%\?*}"
  local query="${admin_url#"$base"}"
  local url="${base%/*}/$name$query"
  PGOPTIONS='-c client_min_messages=warning' "$psql" "$admin_url" -q -v ON_ERROR_STOP=1 \
    -c "DROP DATABASE IF EXISTS $name WITH (FORCE)" -c "CREATE DATABASE $name" >/dev/null || return 1
  # The files in order, each in one transaction: what the embedded migrator applies. (Its own
  # bookkeeping table `_sqlx_migrations` is not created; no checked query reads it.)
  local f
  for f in migrations/[0-9]*.sql; do
    PGOPTIONS='-c client_min_messages=warning' \
      "$psql" "$url" -q -v ON_ERROR_STOP=1 --single-transaction -f "$f" >/dev/null || {
      echo "error: applying $f failed" >&2
      return 1
    }
  done
  echo "$url"
}

sqlx_compare() {
  local dir="$1" status=0 f
  for f in "$dir"/query-*.json; do
    [ -e "$f" ] || continue
    f="$(basename "$f")"
    if [ ! -e ".sqlx/$f" ]; then
      echo "error: .sqlx/$f is missing (a new or changed query)" >&2
      status=1
    elif ! cmp -s "$dir/$f" ".sqlx/$f"; then
      echo "error: .sqlx/$f is stale (the schema changed under the query)" >&2
      status=1
    fi
  done
  for f in .sqlx/query-*.json; do
    [ -e "$f" ] || continue
    f="$(basename "$f")"
    if [ ! -e "$dir/$f" ]; then
      echo "error: .sqlx/$f belongs to no query any more" >&2
      status=1
    fi
  done
  if [ "$status" != 0 ]; then
    echo "error: the offline query data in .sqlx/ is not current: run scripts/sqlx-prepare and commit .sqlx/" >&2
  fi
  return "$status"
}
