#!/usr/bin/env bash
# PostgreSQL outage (issue 15): mirror states produced while the database is unreachable (a TCP
# proxy cut for LINKPLANE_OUTAGE_SECS, default 15) are written when it returns; prints how long
# after its return the API's rows caught up. Needs DATABASE_URL (scripts/bench starts one).
set -euo pipefail
cd "$(dirname "$0")/../.."
LINKPLANE_OUTAGE_SECS="${LINKPLANE_OUTAGE_SECS:-15}" \
  cargo nextest run --locked -p linkplane-mirror --lib --no-capture \
    -E 'test(states_produced_during_a_database_outage_are_written_when_it_returns)' 2>&1 |
  grep -E 'pg-outage:|panicked|PASS|FAIL' || true
