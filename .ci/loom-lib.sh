# Sourced by .ci/loom.sh and .ci/loom-mutations.sh: picks the loom the
# models run on.
#
# By default that is loom 0.7.2 from the crate registry plus
# loom-tests/loom-0.7.2-dpor.patch, a small fix to loom's DPOR: stock loom
# remembers only the most recent access to an atomic, so when a thread
# loads an atomic and then stores to it, the store no longer depends on
# another thread's earlier load, and loom never runs the store before that
# load (loom issues #166 and #392, both open). Nearly every operation of the
# arena is "load the word, then CAS it", so with stock loom some models
# explore a single execution. loom-tests/tests/harness.rs checks that the
# fix is in place. SLOTARENA_LOOM=stock runs on unpatched loom instead
# (its own target dir), e.g. to compare.
#
# Sets LOOM_TARGET_DIR and the array LOOM_CARGO_ARGS (cargo options that
# patch loom in), and puts Cargo.lock back on exit (cargo records the
# patched loom in it while it runs).

LOOM_VERSION=0.7.2
LOOM_CARGO_ARGS=()
LOOM_TARGET_DIR=target/loom

loom_prepare() {
    if [[ "${SLOTARENA_LOOM:-patched}" == stock ]]; then
        LOOM_TARGET_DIR=target/loom-stock
        echo "loom: registry loom $LOOM_VERSION, unpatched"
        return
    fi
    local patch="loom-tests/loom-$LOOM_VERSION-dpor.patch"
    local src="target/loom-src/loom-$LOOM_VERSION"
    local stamp
    stamp="$src/.patched-$(sha256sum "$patch" | cut -c1-16)"
    if [[ ! -e "$stamp" ]]; then
        # The registry client keeps loom's .crate (a tar.gz) in its cache;
        # `cargo fetch` puts it there if no build has yet.
        local cache="${CARGO_HOME:-$HOME/.cargo}/registry/cache" crate
        crate=$(find "$cache" -name "loom-$LOOM_VERSION.crate" -print -quit 2>/dev/null || true)
        if [[ -z "$crate" ]]; then
            cargo fetch --quiet
            crate=$(find "$cache" -name "loom-$LOOM_VERSION.crate" -print -quit)
        fi
        [[ -n "$crate" ]] || { echo "loom-$LOOM_VERSION.crate not in the cargo cache" >&2; return 1; }
        rm -rf "$src"
        mkdir -p target/loom-src
        tar -xzf "$crate" -C target/loom-src
        patch --quiet -p1 -d "$src" < "$patch"
        touch "$stamp"
    fi
    echo "loom: registry loom $LOOM_VERSION + $patch"
    LOOM_CARGO_ARGS=(--config "patch.crates-io.loom.path=\"$PWD/$src\"")
    cp Cargo.lock target/loom-src/Cargo.lock.saved
    trap 'cp target/loom-src/Cargo.lock.saved Cargo.lock' EXIT
}
