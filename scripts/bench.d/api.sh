#!/usr/bin/env bash
# GraphQL API: `topology` and `mirrors(first: 100)` at 50 clusters and 20,000 mirrors, p50/p99
# through the schema (parse, validate, resolve, JSON-encode) and the ratio to the raw SQL for the
# same rows in the same run. Needs DATABASE_URL (scripts/bench starts a throwaway PostgreSQL).
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -p linkplane-schema --example api_bench
./target/release/examples/api_bench
