#!/usr/bin/env bash
# Mutation check of the loom models (on demand, not part of .ci/run).
#
# Each mutation is a `cfg(slotarena_mutation = "...")` switch in src/ that
# breaks one step of a protocol. For each one this builds the loom models
# with `--cfg loom --cfg slotarena_mutation="<name>"` and runs the models
# that must catch it, at preemption bound 2 (as CI), asserting that each
# FAILS, and for the reason expected (its output must contain the given
# text). The pseudo-mutation `stock-loom` runs the harness models on loom
# without the DPOR patch (see .ci/loom-lib.sh): they must fail there.
#
#   .ci/loom-mutations.sh                 every mutation, its table at the end
#   .ci/loom-mutations.sh NAME...         only these mutations
#   .ci/loom-mutations.sh --matrix [NAME...]
#                                         run the whole suite per mutation and
#                                         list every model that fails
#
# Each mutation builds in its own directory under target/loom-mutation/, so
# a second run rebuilds only the crate itself. Exits non-zero if any model
# passed under a mutation it must catch.
set -euo pipefail
cd "$(dirname "$0")/.."
. .ci/loom-lib.sh

# mutation | test file | model | what its failure must say (extended regex)
CHECKS=(
    "free_list_no_tag|free_list|aba_pop_racing_pop_pop_push_keeps_the_list_intact|handed out twice"
    "free_list_no_tag|free_list|three_threads_pop_and_push|indexes lost|handed out twice"
    "free_list_pop_load_store|free_list|two_threads_pop_then_push|handed out twice"
    "free_list_pop_load_store|free_pool|two_threads_stealing_from_a_third_threads_shard_never_share_an_index|filling a slot in use|handed out twice|Concurrent write accesses"
    "free_list_pop_relaxed|slot_lifecycle|a_full_manager_refuses_until_a_racing_free_lands|filling a slot in use|Causality violation"
    "free_list_pop_relaxed|free_list|two_threads_two_rounds_on_two_slots|indexes lost|handed out twice|Causality violation"
    "free_list_snapshot_load|free_pool|a_thread_churning_twice_never_starves_another_of_the_free_slot|refused with a slot free"
    "pop_elsewhere_home_only|free_pool|a_store_succeeds_while_another_thread_moves_slots_to_its_own_shard|refused with a slot free"
    "pop_elsewhere_home_only|free_pool|two_threads_stealing_from_a_third_threads_shard_never_share_an_index|refused with a slot free"
    "pop_elsewhere_home_only|free_pool|a_thread_churning_twice_never_starves_another_of_the_free_slot|refused with a slot free"
    "pop_elsewhere_home_only|review_r4|a_pinned_reclaim_racing_a_store_and_a_stale_key|room hidden"
    "steal_ignores_hot_list|free_pool|a_thief_that_flips_a_shards_lists_never_hides_a_free_slot|refused with a slot free"
    "steal_ignores_hot_list|free_pool|a_producer_batching_a_consumers_frees_is_never_refused_while_a_slot_is_free|refused with a slot free"
    "insert_reads_capacity_after_pop|growth_and_shares|racing_stores_grow_once_and_get_distinct_slots|NoFreeSlots"
    "lock_read_skips_generation|arena_lifecycle|a_stale_reader_racing_remove_and_reuse_never_reaches_the_new_value|stale token reached a newer value"
    "lock_read_skips_generation|slot_lifecycle|a_reader_racing_free_and_reuse_never_reaches_the_new_message|stale token reached a newer message"
    "lock_read_ignores_writer|arena_lifecycle|a_writer_and_a_reader_never_overlap|overlapped|Causality violation"
    "lock_read_ignores_writer|borrow_rules|try_forms_never_wait_and_writers_exclude_readers|Causality violation"
    "lock_read_ignores_writer|arena_lifecycle|a_reader_a_writer_and_a_remove_race_without_overlap_or_loss|overlapped|Causality violation"
    "lock_write_ignores_guards|arena_lifecycle|two_writers_never_overlap|overlapped|Causality violation"
    "lock_write_ignores_guards|arena_lifecycle|a_writer_and_a_reader_never_overlap|overlapped|Causality violation"
    "unlock_write_relaxed|arena_lifecycle|a_writer_and_a_reader_never_overlap|Causality violation"
    "unlock_write_relaxed|arena_lifecycle|take_waits_for_a_writer_and_is_woken_by_its_drop|Causality violation"
    "check_accepts_dying_value|arena_lifecycle|racing_takes_of_one_token_hand_the_value_out_once|deadlock|dropped twice"
    "check_accepts_dying_value|arena_lifecycle|a_take_racing_a_remove_lets_exactly_one_win|both or neither won|maximum number of branches"
    "unlock_read_skips_reclaim|arena_lifecycle|a_deferred_removal_is_dropped_once_by_whichever_thread_is_last|the removed value was not dropped"
    "unlock_read_skips_reclaim|arena_lifecycle|an_owned_read_guard_dropped_on_another_thread_reclaims_a_removed_value|the removed value was not dropped"
    "unlock_read_skips_reclaim|arena_lifecycle|the_last_of_two_readers_on_other_threads_reclaims_a_removed_value|the removed value was not dropped"
    "unlock_read_skips_reclaim|review_r4|a_store_never_misses_a_free_slot_while_a_guard_reclaims_the_other|the removed value was not dropped"
    "unlock_read_relaxed|arena_lifecycle|a_writer_and_a_reader_never_overlap|Causality violation"
    "unlock_read_relaxed|arena_lifecycle|a_reader_a_writer_and_a_remove_race_without_overlap_or_loss|Causality violation"
    "unlock_write_skips_reclaim|arena_lifecycle|an_owned_write_guard_dropped_on_another_thread_reclaims_a_removed_value|the removed value was not dropped"
    "unlock_write_skips_reclaim|arena_lifecycle|a_reader_a_writer_and_a_remove_race_without_overlap_or_loss|the removed value was not dropped"
    "unlock_write_forgets_poison|arena_lifecycle|a_writer_that_panics_poisons_the_value_for_a_racing_reader|did not poison"
    "wait_without_parked_bit|arena_lifecycle|take_waits_for_a_reader_and_is_woken_by_its_drop|deadlock"
    "wait_without_parked_bit|arena_lifecycle|take_waits_for_a_writer_and_is_woken_by_its_drop|deadlock"
    "wait_without_parked_bit|arena_lifecycle|a_writer_that_panics_poisons_the_value_for_a_racing_reader|deadlock"
    "try_take_kills_then_refuses|arena_lifecycle|try_take_racing_a_reader_answers_borrow_active_or_the_value_and_loses_nothing|NotAllocated"
    "try_take_kills_then_refuses|borrow_rules|free_with_a_guard_on_the_same_thread_returns_instead_of_blocking|NotAllocated"
    "free_ignores_retained|growth_and_shares|free_racing_retain_is_refused_or_the_retain_fails|Ok\\(1\\)"
    "release_decrements_blindly|growth_and_shares|racing_releases_free_exactly_once|Ok\\(1\\), Ok\\(1\\)"
    "abandon_keeps_generation|free_pool|a_vacant_entry_stolen_and_given_back_is_never_handed_out_twice|a dropped entry's key reached a value"
    "recycle_ignores_retired|arena_lifecycle|a_slot_at_its_last_generation_retires_by_whichever_thread_is_last|did not retire|filling a slot in use or retired|a retired slot was reused"
    "exclusive_ignores_other_handles|arena_lifecycle|exclusive_access_after_the_other_handle_drops_is_ordered_after_its_accesses|overlapped|Causality violation"
    "release_waits_for_writer|growth_and_shares|a_release_is_never_blocked_by_a_writer_on_another_thread|deadlock"
    "share_word_starts_open|growth_and_shares|a_release_racing_the_first_retain_of_a_fresh_message_never_frees_it|an open count word|answered Ok\\(0\\)"
    "share_word_starts_open|growth_and_shares|two_first_retains_of_a_fresh_message_both_count|counted as one"
    "waiter_without_touch|waiting|a_free_racing_a_waiters_registration_never_loses_the_wake_up|deadlock"
    "async_park_without_mark|waiting|an_unlock_racing_an_async_waiters_parking_wakes_it|deadlock"
    "large_publish_before_assign|linear|a_free_racing_a_large_allocation_never_loses_another_live_block|L3: every naming is counted|is lost"
    "transit_unseen|linear|a_plain_alloc_finds_the_free_block_of_a_span_another_handle_makes|room for two blocks"
    "transit_unseen|linear|a_plain_alloc_finds_the_granules_of_a_span_another_handle_retires|room for a block at every instant"
    "transit_unseen|linear|a_waiter_wakes_for_the_free_block_of_a_span_another_handle_makes|deadlock"
    "exchange_seen_skips_recheck|review_r6|r6_neighbour_frees_in_one_word_and_a_racing_double_free|two frees of one block|S2: a retired span has no live block"
    "exchange_seen_skips_recheck|review_r6|r6_a_free_whose_word_changed_never_swaps_a_claimed_field|bytes changed under a claim|UnknownPointer|assertion"
    "pinned_writer_skips_readers|pinned_reads|a_pinned_reader_and_a_writer_never_overlap|overlapped|Causality violation"
    "pinned_writer_skips_readers|pinned_reads|a_pinned_reader_racing_remove_drops_the_value_once_after_the_read|dropped during an access|read after its drop|Causality violation"
    "pinned_writer_skips_readers|pinned_reads|take_waits_for_a_pinned_reader|overlapped|dropped during an access|read after its drop|Causality violation"
    "stock-loom|harness|a_load_then_cas_on_another_thread_is_tried_before_a_plain_load|misses interleavings"
    "stock-loom|harness|an_insert_racing_a_remove_on_a_full_arena_sees_both_outcomes|misses interleavings"
    "take_keeps_kept|linear|a_free_empties_a_pinned_span_while_its_handle_allocates|S4"
    "lookup_unpinned|linear|a_stale_free_racing_a_span_remade_elsewhere_never_frees_another_block|freed before the racing free|stayed live"
    "lookup_unpinned|linear|a_stale_claim_racing_a_span_remade_elsewhere_never_claims_another_block|claimed through a stale lookup"
    "reclaim_skips_kept|linear|a_waiter_takes_the_granules_of_a_span_kept_for_an_idle_handle|deadlock"
    "growth_unsettled|linear|an_alloc_racing_a_kept_span_reclaim_never_grows_the_memory|grew with a 4-granule kept span"
)

matrix=false
if [[ "${1:-}" == --matrix ]]; then
    matrix=true
    shift
fi
wanted=("$@")
if [[ ${#wanted[@]} -eq 0 ]]; then
    for check in "${CHECKS[@]}"; do
        name=${check%%|*}
        [[ " ${wanted[*]-} " == *" $name "* ]] || wanted+=("$name")
    done
fi

loom_prepare
patched_args=("${LOOM_CARGO_ARGS[@]}")
log_dir=target/loom-mutation/logs
mkdir -p "$log_dir"

# Sets RUN (env assignments, then cargo and its options) for mutation $1.
mutated_cargo() {
    local mutation=$1
    local flags="--cfg loom -C debug-assertions=on"
    RUN=(env "CARGO_TARGET_DIR=target/loom-mutation/$mutation")
    if [[ "$mutation" == stock-loom ]]; then
        RUN+=("RUSTFLAGS=$flags" cargo)
    else
        RUN+=("RUSTFLAGS=$flags --cfg slotarena_mutation=\"$mutation\"" cargo "${patched_args[@]}")
    fi
}

# Builds the models for mutation $1 and fills BINARIES (test file name ->
# executable). Each model then runs as its own process: loom aborts the
# whole test binary on a deadlock.
declare -A BINARIES
build_models() {
    local mutation=$1
    mutated_cargo "$mutation"
    BINARIES=()
    local name exe
    while IFS=$'\t' read -r name exe; do
        BINARIES[$name]=$exe
    done < <("${RUN[@]}" test -p slotarena-loom-tests --release --no-run \
        --message-format=json 2>"$log_dir/$mutation.build.log" |
        sed -n 's/.*"target":{[^}]*"name":"\([^"]*\)".*"executable":"\([^"]*\)".*/\1\t\2/p')
    [[ ${#BINARIES[@]} -gt 0 ]] || {
        echo "mutation $mutation: build failed, see $log_dir/$mutation.build.log" >&2
        exit 1
    }
}

# Runs model $3 of test file $2 under mutation $1, output to $4; sets
# STATUS and SECS.
run_model() {
    local start=$EPOCHREALTIME
    STATUS=0
    # The group's 2>/dev/null keeps bash's "Aborted" notice (loom aborts
    # the process on a deadlock) out of the table.
    {
        timeout 600 env LOOM_MAX_PREEMPTIONS=2 "${BINARIES[$2]}" --exact "$3" >"$4" 2>&1
        STATUS=$?
    } 2>/dev/null || true
    SECS=$(awk "BEGIN { printf \"%.2f\", $EPOCHREALTIME - $start }")
}

table=()
missed=0
start_all=$SECONDS
for mutation in "${wanted[@]}"; do
    build_start=$SECONDS
    build_models "$mutation"
    echo "mutation $mutation: built in $((SECONDS - build_start)) s"
    if $matrix; then
        failing=()
        for file in $(printf '%s\n' "${!BINARIES[@]}" | sort); do
            while read -r model; do
                run_model "$mutation" "$file" "$model" "$log_dir/$mutation.$model.log"
                [[ $STATUS -eq 0 ]] || failing+=("$file::$model")
            done < <("${BINARIES[$file]}" --list 2>/dev/null | sed -n 's/: test$//p')
        done
        table+=("$(printf '%-32s %s' "$mutation" "${failing[*]:-NOTHING}")")
        continue
    fi
    found=false
    for check in "${CHECKS[@]}"; do
        IFS='|' read -r name file model expect <<<"$check"
        [[ "$name" == "$mutation" ]] || continue
        found=true
        log="$log_dir/$mutation.$model.log"
        run_model "$mutation" "$file" "$model" "$log"
        if [[ $STATUS -ne 0 ]] && grep -qE -- "$expect" "$log"; then
            verdict="caught in $SECS s"
        elif [[ $STATUS -ne 0 ]]; then
            verdict="FAILED, BUT NOT WITH \"$expect\" (see $log)"
            missed=$((missed + 1))
        else
            verdict="MISSED: the model passed ($SECS s)"
            missed=$((missed + 1))
        fi
        table+=("$(printf '%-32s %-18s %-77s %s' "$mutation" "$file" "$model" "$verdict")")
    done
    $found || { echo "unknown mutation: $mutation" >&2; exit 1; }
done

echo
if $matrix; then
    echo "mutation                         models that fail under it (file::model)"
else
    printf '%-32s %-18s %-77s %s\n' mutation file model result
fi
printf '%s\n' "${table[@]}"
echo
echo "total: $((SECONDS - start_all)) s; missed: $missed"
[[ $missed -eq 0 ]]
