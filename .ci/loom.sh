#!/usr/bin/env bash
# The loom models, in release with debug assertions, preemption bound 2
# (LOOM_MAX_PREEMPTIONS=3 for the deeper on-demand run), on loom 0.7.2 with
# the DPOR fix described in .ci/loom-lib.sh (SLOTARENA_LOOM=stock: without).
# SLOTARENA_LOOM_SHARDS=N runs the models at N shards (default 2). Extra
# arguments go to cargo test, e.g. `-- --nocapture` prints each
# model's explored executions and time.
set -euo pipefail
cd "$(dirname "$0")/.."
. .ci/loom-lib.sh
loom_prepare
loom_test() {
    CARGO_TARGET_DIR="$LOOM_TARGET_DIR" \
    RUSTFLAGS="--cfg loom -C debug-assertions=on" \
    LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-2}" \
        cargo "${LOOM_CARGO_ARGS[@]}" test -p slotarena-loom-tests --release "$@"
}
loom_test "$@"
# The whole suite runs at two shards (src/sync/loom_impl.rs); the free
# pool's own models also run at four, the fewest a build ships.
if [[ $# -eq 0 ]]; then
    echo "loom: the free pool's models again at four shards"
    SLOTARENA_LOOM_SHARDS=4 loom_test --test free_pool --test review_r8
fi
