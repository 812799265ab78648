#!/usr/bin/env bash
# Miri over the tests that exercise unsafe code (the linear memory's byte
# region) and the concurrent core. Miri and rust-src are installed on the
# nightly toolchain when missing (bounded in time); when that fails, so does
# this step. The one case that does not run Miri is a machine without any
# nightly toolchain (Miri exists only there), and the log says so in one line.
set -euo pipefail
cd "$(dirname "$0")/.."
install_seconds="${MIRI_INSTALL_SECONDS:-600}"

# RUSTUP_AUTO_INSTALL=0: asking must not download a toolchain.
if ! RUSTUP_AUTO_INSTALL=0 cargo +nightly --version >/dev/null 2>&1; then
    echo "miri: NOT RUN: this machine has no nightly toolchain, and Miri exists only on nightly"
    exit 0
fi

missing=()
cargo +nightly miri --version >/dev/null 2>&1 || missing+=(miri)
[ -d "$(rustc +nightly --print sysroot)/lib/rustlib/src/rust/library" ] || missing+=(rust-src)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "miri: nightly lacks ${missing[*]}; installing (at most ${install_seconds}s)"
    if ! timeout "$install_seconds" rustup component add --toolchain nightly "${missing[@]}"; then
        echo "miri: FAILED: could not install ${missing[*]} on nightly (error or ${install_seconds}s timeout above)" >&2
        exit 1
    fi
fi
cargo +nightly miri --version
# The sysroot build is the other first-run cost (about 25 s); bound it too.
if ! timeout "$install_seconds" cargo +nightly miri setup; then
    echo "miri: FAILED: could not build Miri's sysroot (error or ${install_seconds}s timeout above)" >&2
    exit 1
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
