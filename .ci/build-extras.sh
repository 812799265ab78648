#!/usr/bin/env bash
# Builds that tests do not cover: no_std feature sets and docs. The
# benches and the report (the `bench/` workspace member) are type-checked
# on every target and feature set by .ci/clippy.sh; their release build
# (criterion and the peer crates, three minutes on a fresh machine) is left
# to whoever runs them.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --no-default-features
cargo build --no-default-features --features alloc
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --all-features
