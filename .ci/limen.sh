#!/usr/bin/env bash
# The `limen` feature (compat::limen, off by default): clippy with warnings
# denied, its docs, and the tests with the feature on, which add the
# limen-core graph, contract and free-race suites to the default ones.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo clippy --workspace --all-targets --features limen -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --features limen
cargo test --features limen
