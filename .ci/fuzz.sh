#!/usr/bin/env bash
# Builds every fuzz target and runs each for a bounded time, replaying the
# committed seeds first. A crash fails CI. Says plainly when it cannot run.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-30}"
targets=(managers linear tokens)

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: cargo-fuzz is missing; installing it from crates.io"
    if ! timeout 900 cargo install cargo-fuzz --locked; then
        echo "fuzz: SKIPPED: cargo-fuzz could not be installed on this machine"
        exit 0
    fi
fi

# libFuzzer with AddressSanitizer needs nightly; stable runs without it.
if cargo +nightly --version >/dev/null 2>&1; then
    toolchain=(+nightly)
    sanitizer=()
else
    echo "fuzz: no nightly toolchain: fuzzing on stable without a sanitizer (-s none)"
    toolchain=(+stable)
    sanitizer=(-s none)
fi

cd fuzz
cargo "${toolchain[@]}" fuzz build "${sanitizer[@]}"
log=$(mktemp)
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
        echo "fuzz: $target FAILED (exit $status); the input is under fuzz/artifacts/$target/"
        exit "$status"
    fi
done
