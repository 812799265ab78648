#!/usr/bin/env bash
# Builds that tests do not cover: no_std feature sets, docs, benches.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --no-default-features
cargo build --no-default-features --features alloc
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps
if [ -d benches ] && ls benches/*.rs >/dev/null 2>&1; then
    cargo bench --no-run
fi
