#!/usr/bin/env bash
# Manifest fuzzing, longer than the bounded run in scripts/test: FUZZ_MANIFEST_CASES (default
# 20,000) revisions made by mutating examples/gitops/ (truncation, indentation, wrong types, deep
# nesting, huge numbers, NUL/control characters, invalid UTF-8...), parsed in a release build.
# Prints the cases, how many were rejected, the diagnostics (all checked to be file:line:col
# inside a file of the revision) and the slowest parse; fails on any panic. No database needed.
set -euo pipefail
cd "$(dirname "$0")/../.."
export FUZZ_MANIFEST_CASES="${FUZZ_MANIFEST_CASES:-20000}"
cargo test --release --locked -p linkplane-gitops --test fuzz_manifests -- --nocapture
