#!/usr/bin/env bash
# The feature sets below `std`, tested for real: no features (tokens,
# messages, the traits, StaticMemoryManager) and `alloc` (adds
# HeapMemoryManager). Tests and examples that need `std` declare
# `required-features` or gate their parts with `cfg(feature = …)`; what is
# left must still run tests, so a run that executes none fails.
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for features in "" "alloc"; do
    echo "nostd: cargo test --no-default-features${features:+ --features $features}"
    cargo test --no-default-features ${features:+--features "$features"} 2>&1 | tee "$log"
    passed=$(awk '/^test result:/ { sum += $4 } END { print sum + 0 }' "$log")
    if [ "$passed" -eq 0 ]; then
        echo "nostd: FAILED: no test ran with features '${features:-none}'"
        exit 1
    fi
    echo "nostd: $passed tests passed with features '${features:-none}'"
done
