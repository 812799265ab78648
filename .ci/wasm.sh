#!/usr/bin/env bash
# WASM guests (feature `wasmtime`): adds the guest target, checks and
# builds the Rust guest (guests/guest, a workspace of its own) with both
# allocators, runs the wasmtime-feature tests and the wasm_host example.
# Debug builds in the shared target/ with `--all-features`, the same
# flags as .ci/features.sh and .ci/clippy.sh, so wasmtime (the big build)
# is compiled once for all of them.
#
# Measured on 2 busy cores: 8 min 9 s with an empty target dir (7 min 45 s
# of it the --all-features test build, wasmtime's debug build included,
# which .ci/features.sh has already done when this runs after it); 7 s
# when that build is there (guest builds 1.6 s cold, tests and example 5 s).
set -euo pipefail
cd "$(dirname "$0")/.."
target=wasm32-unknown-unknown

if ! rustup target list --installed | grep -qx "$target"; then
    echo "wasm: adding the $target target"
    if ! timeout 300 rustup target add "$target"; then
        echo "wasm: FAILED: could not add the $target target (error or 300 s timeout above);" \
            "the guest cannot be built without it" >&2
        exit 1
    fi
fi

guest=guests/guest/Cargo.toml
cargo fmt --manifest-path "$guest" -- --check
cargo clippy --manifest-path "$guest" --target "$target" --target-dir target/guests/host-alloc -- -D warnings
cargo build --release --manifest-path "$guest" --target "$target" --target-dir target/guests/host-alloc
cargo build --release --manifest-path "$guest" --target "$target" --target-dir target/guests/std-alloc \
    --features std-alloc

cargo test --all-features --test wasm_memory --test wasm_imports --test guest_bytes
cargo run --all-features --example wasm_host
