#!/usr/bin/env bash
# Dashboard: time to first paint of the topology in headless Chromium at 50 clusters / 100 links /
# 20,000 mirrors (p50/p90/max over 20 fresh tabs after 3 warm-up), against a release build of
# `linkplane serve --no-reconcile` on a seeded database. Needs DATABASE_URL (scripts/bench starts
# a throwaway PostgreSQL); installs Chromium and the driver with scripts/lib/browser.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${LINKPLANE_BIN:-}" ]; then
  cargo build --release --locked -p linkplane-server --bin linkplane
  export LINKPLANE_BIN="$PWD/target/release/linkplane"
fi
cargo run --release --locked -p linkplane-e2e --example dashboard_bench
