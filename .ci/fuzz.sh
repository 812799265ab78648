#!/usr/bin/env bash
# Builds every fuzz target and runs each for a bounded time, replaying the
# committed seeds first. A crash fails CI. cargo-fuzz is installed when
# missing (bounded in time); when that fails, so does this step: it never
# passes without having fuzzed.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-30}"
install_seconds="${FUZZ_INSTALL_SECONDS:-900}"
targets=(managers linear tokens)

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: cargo-fuzz is missing; installing it (at most ${install_seconds}s)"
    if ! timeout "$install_seconds" cargo install cargo-fuzz --locked; then
        echo "fuzz: FAILED: could not install cargo-fuzz (error or ${install_seconds}s timeout above)" >&2
        exit 1
    fi
fi
cargo fuzz --version

# libFuzzer with AddressSanitizer needs nightly. Without any nightly the
# targets still run, on stable and without a sanitizer; say so in one line.
# RUSTUP_AUTO_INSTALL=0: asking must not download a toolchain.
if RUSTUP_AUTO_INSTALL=0 cargo +nightly --version >/dev/null 2>&1; then
    toolchain=(+nightly)
    sanitizer=()
else
    echo "fuzz: no nightly toolchain on this machine: fuzzing on the default toolchain without AddressSanitizer (-s none)"
    toolchain=()
    sanitizer=(-s none)
fi

cd fuzz
cargo "${toolchain[@]}" fuzz build "${sanitizer[@]}"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for target in "${targets[@]}"; do
    echo "fuzz: $target for ${seconds}s"
    if cargo "${toolchain[@]}" fuzz run "${sanitizer[@]}" "$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
        status=0
    else
        status=$?
    fi
    # Show the summary, not libFuzzer's chatter; on failure, the whole tail.
    grep -E '^(#[0-9]+ +DONE|Done|stat::number_of_executed_units)' "$log" || true
    if [ "$status" -ne 0 ]; then
        tail -n 60 "$log"
        echo "fuzz: $target FAILED (exit $status); the input is under fuzz/artifacts/$target/" >&2
        exit "$status"
    fi
done
