#!/usr/bin/env bash
# Fleet scale (issue 19): 100 kubesim clusters, full mesh (9,900 links), 20 exported services each
# (198,000 mirror Services and their Endpoints), with 1 and with 2 replicas (child processes with
# leases): cold convergence and writes/s vs raw creates/s, watch streams held (counted by kubesim),
# RSS per mirror, steady-state requests/min, churn latency p50/p99, takeover after kill -9.
# Sizes: BENCH_FLEET_CLUSTERS, BENCH_FLEET_SERVICES, BENCH_FLEET_REPLICAS (e.g. "2"),
# BENCH_FLEET_STEADY_SECS, BENCH_FLEET_CHURN_RATE, BENCH_FLEET_CHURN_SECS, BENCH_FLEET_RAW_PAIRS,
# BENCH_FLEET_IN_FLIGHT; BENCH_FLEET_CHILD_WRAPPER=heaptrack profiles the replicas;
# BENCH_FLEET_CHILD_LOG=info (an EnvFilter) prints the replicas' logs on stderr.
# A quick run: BENCH_FLEET_CLUSTERS=10 BENCH_FLEET_STEADY_SECS=10.
# Needs DATABASE_URL (scripts/bench starts a throwaway PostgreSQL).
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --locked -p linkplane-mirror --example fleet_bench
# 100 clusters hold thousands of TLS connections and watch streams: lift the soft fd limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
./target/release/examples/fleet_bench
