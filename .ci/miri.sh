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
# directory for its failure-persistence files. Each group below is the
# tests that run the unsafe code paths (the arena's value storage, guards,
# deferred removal and reclaim, owned and mapped guards; the linear
# memory's byte handouts) at a size Miri finishes in minutes; the
# many-thread stress tests stay with the native run.
export CARGO_TARGET_DIR=target/miri
export MIRIFLAGS="-Zmiri-strict-provenance -Zmiri-symbolic-alignment-check -Zmiri-disable-isolation"
export PROPTEST_CASES=4
# The unit tests of the linear memory's bookkeeping (span fields, the
# pool, the directory, span keeping) are safe code over plain vectors with
# thousands of rounds each: under Miri they took 117 of the group's 183 s
# and reach no unsafe code (that is `region.rs`, run by `linear_contract`
# below), so they stay with the native run.
cargo +nightly miri test --lib --test borrows_and_poison -- \
    --skip a_lone_block_allocated_and_freed_again_and_again_keeps_its_span \
    --skip a_span_of_every_class_fits_its_fields_in_few_words \
    --skip random_takes_and_gives_back_keep_every_invariant \
    --skip every_granule_of_a_large_block_has_an_anchor_at_most_its_floor_behind \
    --skip at_most_kept_spans_empty_spans_stay_committed \
    --skip freed_starts_are_exact_and_make_a_bitmap_only_where_marked
cargo +nightly miri test --test slot_arena -- \
    errors_come remove_never remove_under take_waits a_stale try_forms a_panicking \
    a_guard_taken owned_guards mapped_guards iter_skips dropping_the_arena insert_error \
    too_many take_of_a_poisoned exclusive a_drain clear_through into_iter_from a_vacant_entry \
    insert_with_key every_guard typed_keys
# Pinned reads: the record registry (lib tests above) and Reader/PinnedRef,
# deferred drops and the real-thread races at Miri's scaled-down counts.
# The tests that wait out a fixed time (get_mut, take and async writers
# held off by a pin) stay with the native run.
cargo +nightly miri test --test pinned_reads -- \
    a_pinned_read_answers try_forms_refuse remove_never_waits a_removed_value_held \
    a_failed_pin_of pinned_readers_never removes_racing
cargo +nightly miri test --test waiting -- \
    waiters_are_served a_cancelled_waiter an_async_lock timeouts
cargo +nightly miri test --test linear_contract -- \
    threads_writing every_error mut_mem_is_exclusive transfer_and_receive async_controllers
cargo +nightly miri test --test linear_waiting -- \
    the_async_controller a_cancelled_async
# Guest memories: host copies racing a stand-in guest (threads writing
# the bytes directly), the part of `wasm` that Miri can run (not wasmtime).
cargo +nightly miri test --test guest_bytes
# 32-bit: the linear memory's size arithmetic (u64 or checked) and byte
# handouts on i686. Single-threaded tests only: Miri does not emulate the
# 32-bit futex_time64 call that parking needs.
cargo +nightly miri test --target i686-unknown-linux-gnu --test linear_contract -- \
    every_error mut_mem_is_exclusive a_one_page bad_page the_largest never_allocated mut_mem_accepts
# A length a guest made up reaches the host's copies (`read_vec`): where
# `usize` is 32 bits, a `Vec` of it overflows capacity (review_r2).
cargo +nightly miri test --target i686-unknown-linux-gnu --test review_r2 -- read_vec
