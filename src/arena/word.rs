//! The lifecycle word: one `AtomicU64` per slot that is at once the slot's
//! state, its generation, its reader-writer lock and, while the slot is
//! vacant, its free-list link.
//!
//! ```text
//!  63                    32 31                  6   5   4   3   2   1   0
//! ┌────────────────────────┬─────────────────────┬───┬───────┬───┬───┬───┐
//! │ generation             │ readers / next free │ R │ state │ P │ K │ W │
//! └────────────────────────┴─────────────────────┴───┴───────┴───┴───┴───┘
//!   W = a writer (or the slot's reclaimer) holds it exclusively; in a
//!       vacant word: the slot is retired (its generations are used up)
//!   K = a thread is parked waiting on this word
//!   P = poisoned: a writer panicked while it held the value
//!   R = retained: the message has queue shares (the manager's fan-out),
//!       so a free or take answers `QueueOwned`
//! ```
//!
//! | state      | value      | what the middle field counts            | token of this generation |
//! |------------|------------|-----------------------------------------|--------------------------|
//! | `VACANT`   | none       | the next index on a free list           | `NotAllocated`           |
//! | `PRESENT`  | live       | read guards                             | served                   |
//! | `REMOVING` | awaits the last guard | read guards still live       | `NotAllocated`           |
//! | `TAKING`   | a `take` waits for guards | read guards still live   | `NotAllocated`           |
//!
//! Because the generation sits in the same word as the lock, taking a guard
//! checks the token in the compare-and-swap that locks: a stale token's CAS
//! can never succeed, so it never waits and never blocks the slot's new
//! owner.

/// A writer, or the thread reclaiming the slot, holds it exclusively.
pub(super) const WRITER: u64 = 1 << 0;
/// In a vacant word: the slot is retired, held by nobody forever. Its last
/// value had the last generation (`u32::MAX`), so a next value would wrap
/// to a generation some old token carries; it never goes back on a free
/// list.
pub(super) const RETIRED: u64 = WRITER;
/// At least one thread is parked on this word; whoever clears a condition
/// that waiters wait for must clear this bit and unpark them.
pub(super) const PARKED: u64 = 1 << 1;
/// A writer panicked while it held the value.
pub(super) const POISONED: u64 = 1 << 2;

const STATE_SHIFT: u32 = 3;
pub(super) const STATE_MASK: u64 = 0b11 << STATE_SHIFT;
/// No value; the middle field is a free-list link.
pub(super) const VACANT: u64 = 0;
/// A live value.
pub(super) const PRESENT: u64 = 1 << STATE_SHIFT;
/// Removed while guards were live: dead to tokens, dropped by the last guard.
pub(super) const REMOVING: u64 = 2 << STATE_SHIFT;
/// A `take` is waiting for the live guards to drop.
pub(super) const TAKING: u64 = 3 << STATE_SHIFT;

/// The value has outstanding queue shares (used by the message manager).
pub(super) const RETAINED: u64 = 1 << 5;

const COUNT_SHIFT: u32 = 6;
const COUNT_BITS: u32 = 26;
const COUNT_MAX: u64 = (1 << COUNT_BITS) - 1;
/// One read guard, as added to a word.
pub(super) const ONE_READER: u64 = 1 << COUNT_SHIFT;
const COUNT_MASK: u64 = COUNT_MAX << COUNT_SHIFT;
// The count, the state and the flags all sit in a word's low half, so
// `last_reader_has_work` tests them with 32-bit operations.
const _: () = assert!(COUNT_MASK >> 32 == 0);
const GENERATION_SHIFT: u32 = 32;

/// End of a free list. It is also one more than the largest index an arena
/// may have, so every real index fits in the middle field.
pub const NIL: u32 = COUNT_MAX as u32;
/// The most read guards one value can have at once.
pub(crate) const MAX_READERS: u64 = COUNT_MAX - 1;
/// The middle field of a removed value whose drop waits for its pinned
/// readers (pins.rs, P3): more read guards than a value can have
/// ([`MAX_READERS`]), so no lock or unlock ever makes it. In particular the
/// last read guard of a removed value, whose unlock leaves `REMOVING` with
/// no reader and no `WRITER` for an instant before it takes the slot,
/// never looks like a drop left to pinned readers.
pub(super) const DROP_PENDING: u64 = COUNT_MAX << COUNT_SHIFT;

/// The generation recorded in a word.
#[inline]
pub(super) const fn generation(word: u64) -> u32 {
    (word >> GENERATION_SHIFT) as u32
}

/// The state bits of a word (`VACANT`, `PRESENT`, `REMOVING`, `TAKING`).
#[inline]
pub(super) const fn state(word: u64) -> u64 {
    word & STATE_MASK
}

/// Live read guards (meaningful in every state but `VACANT`).
#[inline]
pub(super) const fn readers(word: u64) -> u64 {
    (word & COUNT_MASK) >> COUNT_SHIFT
}

/// Whether any guard, read or write, holds the value.
#[inline]
pub(super) const fn guarded(word: u64) -> bool {
    word & (COUNT_MASK | WRITER) != 0
}

/// Whether a read unlock's subtraction that found `before` was the only
/// reader of a value simply present with nobody parked: the unlock with
/// no work that the guess of `Slot::unlock_read` missed (a flag in the
/// word), in one compare (see [`last_reader_has_work`] for the others).
#[inline]
pub(super) const fn lone_reader_of_present(before: u64) -> bool {
    let fields = (COUNT_MASK | PARKED | STATE_MASK) as u32;
    (before as u32) & fields == (ONE_READER | PRESENT) as u32
}

/// Whether a read unlock that found `before` leaves work for its thread:
/// it was the last reader (a count of one) of a value that is not simply
/// present with nobody parked (removed, or waited for).
///
/// Every read unlock but the lone reader's asks (out of line), in one
/// compare: xor-ing the one
/// word that needs nothing, `ONE_READER | PRESENT`, into the count,
/// `PARKED` and state fields leaves 0 for it; a count field of 0 and
/// something in `PARKED` or the state for a last reader with work; and a
/// count field other than 0 for any other reader. Less one, only the
/// second kind is below `ONE_READER - 1`.
#[inline]
pub(super) const fn last_reader_has_work(before: u64) -> bool {
    let fields = (COUNT_MASK | PARKED | STATE_MASK) as u32;
    let odd = ((before as u32) & fields) ^ (ONE_READER | PRESENT) as u32;
    odd.wrapping_sub(1) < (ONE_READER - 1) as u32
}

/// A vacant word of `generation` whose free-list link is `next`.
#[inline]
pub(crate) const fn vacant(generation: u32, next: u32) -> u64 {
    ((generation as u64) << GENERATION_SHIFT) | ((next as u64) << COUNT_SHIFT) | VACANT
}

/// The free-list link of a vacant word.
#[inline]
pub(crate) const fn next_free(word: u64) -> u32 {
    readers(word) as u32
}

/// The word of a retired slot: vacant at the last generation, on no list.
pub(super) const RETIRED_WORD: u64 = vacant(u32::MAX, NIL) | RETIRED;

/// A present word of `generation` with no guard.
#[inline]
pub(super) const fn present(generation: u32) -> u64 {
    ((generation as u64) << GENERATION_SHIFT) | PRESENT
}

/// Whether `word` is a removed value whose drop waits for its pinned
/// readers: `REMOVING`, no `WRITER`, and [`DROP_PENDING`] in place of a
/// count of read guards.
#[inline]
pub(super) const fn drop_pending(word: u64) -> bool {
    word & (STATE_MASK | WRITER | COUNT_MASK) == REMOVING | DROP_PENDING
}

/// `word` with its state replaced.
#[inline]
pub(super) const fn with_state(word: u64, state: u64) -> u64 {
    (word & !STATE_MASK) | state
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The one-compare test says what it means, for every count, flag
    /// and state a read unlock can see, and whatever the generation.
    #[test]
    fn last_reader_has_work_exactly_when_it_is_last_on_an_odd_word() {
        for generation in [0, 1, u32::MAX] {
            for count in (1..=4).chain([MAX_READERS - 1, MAX_READERS, COUNT_MAX]) {
                for flags in 0..=(PARKED | POISONED | WRITER | RETAINED) {
                    for state in [VACANT, PRESENT, REMOVING, TAKING] {
                        let word = ((generation as u64) << GENERATION_SHIFT)
                            | (count << COUNT_SHIFT)
                            | flags
                            | state;
                        let expected = count == 1 && word & (PARKED | STATE_MASK) != PRESENT;
                        assert_eq!(last_reader_has_work(word), expected, "{word:#x}");
                        let lone = count == 1 && word & (PARKED | STATE_MASK) == PRESENT;
                        assert_eq!(lone_reader_of_present(word), lone, "{word:#x}");
                    }
                }
            }
        }
    }

    proptest! {
        #[test]
        fn fields_round_trip(generation_in in any::<u32>(), next in 0..NIL) {
            let word = vacant(generation_in, next);
            prop_assert_eq!(generation(word), generation_in);
            prop_assert_eq!(next_free(word), next);
            prop_assert_eq!(state(word), VACANT);
            let live = present(generation_in) + 3 * ONE_READER;
            prop_assert_eq!((generation(live), readers(live), state(live)), (generation_in, 3, PRESENT));
            prop_assert!(guarded(live) && !guarded(present(generation_in)));
        }
    }
}
