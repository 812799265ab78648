#!/usr/bin/env bash
# The loom models, in release with debug assertions, preemption bound 2.
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO_TARGET_DIR=target/loom \
RUSTFLAGS="--cfg loom -C debug-assertions=on" \
LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-2}" \
    cargo test -p slotarena-loom-tests --release
