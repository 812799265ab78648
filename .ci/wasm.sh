#!/usr/bin/env bash
# WASM guests (feature `wasmtime`): adds the guest target, checks and
# builds the Rust guest (guests/guest, a workspace of its own) with both
# allocators, runs the wasmtime-feature tests and the wasm_host example.
# Debug builds in the shared target/ with `--all-features`, the same
# flags as the README's `cargo test --all-features` that .ci/run ends with,
# so wasmtime (the big build) is compiled once for both.
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
