#!/usr/bin/env bash
# Restart and resyncs of an unchanged fleet of 1,000 mirror Services (multi-port gateway,
# headless with 3 pods, flat, federated): writes after the restart and across resyncs, by the
# write counter and by kubesim's request log (goal 0). Needs DATABASE_URL (scripts/bench starts
# a throwaway PostgreSQL).
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -p linkplane-mirror --example restart_bench
./target/release/examples/restart_bench
