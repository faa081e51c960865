#!/usr/bin/env bash
# PostgreSQL outage (issue 15), two ways:
# 1. unit level: mirror states produced while the state writer's connection is cut (a TCP proxy,
#    LINKPLANE_OUTAGE_SECS, default 15) are written when it returns;
# 2. end to end: `linkplane dev` on a PostgreSQL of its own that is stopped (`pg_ctl stop -m fast`)
#    for LINKPLANE_OUTAGE_SECS while services are exported and withdrawn; prints how long after its
#    return the API equalled the clusters. Needs DATABASE_URL (scripts/bench starts one).
set -euo pipefail
cd "$(dirname "$0")/../.."
export LINKPLANE_OUTAGE_SECS="${LINKPLANE_OUTAGE_SECS:-15}"
cargo nextest run --locked -p linkplane-mirror --lib --no-capture \
  -E 'test(states_produced_during_a_database_outage_are_written_when_it_returns)' 2>&1 |
  grep -E 'pg-outage:|panicked|PASS|FAIL' || true
cargo build --locked -q -p linkplane-server --bins
LINKPLANE_BIN="$PWD/target/debug/linkplane" \
  cargo nextest run --locked -p linkplane-e2e --test pg_outage --no-capture 2>&1 |
  grep -E 'pg-outage e2e:|panicked|PASS|FAIL' || true
