#!/usr/bin/env bash
# GitOps: a 10,000-object revision (fetch, parse + validate, plan + apply, each phase timed),
# a no-op sync of the unchanged revision, and webhook-to-applied latency through
# `linkplane serve` (HTTP push webhook → committed sync). Needs DATABASE_URL (scripts/bench
# starts a throwaway PostgreSQL).
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -p linkplane-gitops --example gitops_bench
cargo build --release -p linkplane-server --bin linkplane
LINKPLANE_BIN="$PWD/target/release/linkplane" ./target/release/examples/gitops_bench
