#!/usr/bin/env bash
# End to end through `linkplane dev`: commit → mirror latency via webhook (p50/p99 over 50 commits)
# and cluster-recovery convergence. Uses a release build of the binary.
set -euo pipefail
cargo build --release --locked -p linkplane-server --bin linkplane
LINKPLANE_BIN="$PWD/target/release/linkplane" cargo run --release --locked -p linkplane-e2e --example bench
