#!/usr/bin/env bash
# Fuzz of the HTTP surface (GraphQL documents and variables, bodies, headers, paths, webhooks)
# against `linkplane serve` as a process: 50,000 requests, none may crash it or get a 5xx. The
# same test runs 1,500 requests in scripts/test. Prints the seed and the statuses answered.
# Needs DATABASE_URL (scripts/bench starts a throwaway PostgreSQL).
set -euo pipefail
cd "$(dirname "$0")/../.."
start=$(date +%s)
LINKPLANE_FUZZ_REQUESTS="${LINKPLANE_FUZZ_REQUESTS:-50000}" \
  cargo nextest run --locked -p linkplane-server --test fuzz_http --no-capture 2>&1 |
  grep -E 'LINKPLANE_FUZZ_SEED|statuses|panicked|request [0-9]+ \(seed|no answer|PASS|FAIL' || true
echo "fuzz: took $(( $(date +%s) - start )) s"
