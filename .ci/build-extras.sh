#!/usr/bin/env bash
# Builds that tests do not cover: no_std feature sets, docs, benches.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --no-default-features
cargo build --no-default-features --features alloc
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --all-features
# The benches and the report live in the `bench/` workspace member, so the
# library's own builds never compile criterion or the peer crates.
cargo bench -p slotarena-bench --no-run
cargo build --release -p slotarena-bench --bin bench_report
