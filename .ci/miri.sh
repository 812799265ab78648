#!/usr/bin/env bash
# Miri over the tests that exercise unsafe code (the linear memory's byte
# region) and the concurrent core, when the nightly toolchain has Miri.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! cargo +nightly miri --version >/dev/null 2>&1; then
    echo "miri: not installed for nightly; trying rustup"
    if ! timeout 300 rustup component add --toolchain nightly miri rust-src; then
        echo "miri: SKIPPED: no nightly toolchain with Miri on this machine"
        exit 0
    fi
fi
# Isolation is disabled only because proptest looks up the working
# directory for its failure-persistence files.
CARGO_TARGET_DIR=target/miri \
MIRIFLAGS="-Zmiri-strict-provenance -Zmiri-symbolic-alignment-check -Zmiri-disable-isolation" \
PROPTEST_CASES=4 \
    cargo +nightly miri test --lib --test borrows_and_poison
# The linear tests that hand out bytes across threads and handles; the rest
# only add allocator bookkeeping, which is slow to set up under Miri.
CARGO_TARGET_DIR=target/miri \
MIRIFLAGS="-Zmiri-strict-provenance -Zmiri-symbolic-alignment-check -Zmiri-disable-isolation" \
    cargo +nightly miri test --test linear_contract -- \
    threads_writing every_error mut_mem_is_exclusive transfer_and_receive async_controllers
