#!/usr/bin/env bash
# kubesim: creates/s from one kube client over HTTPS, list of 10,000 Services, watch fan-out to
# 50 watchers, memory per stored Service. Needs no database.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -p kubesim --example kubesim_bench
./target/release/examples/kubesim_bench
