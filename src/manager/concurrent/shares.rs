//! Queue share counts: a retained mark in the slot's lifecycle word, and
//! the count in a generation-tagged word beside the slot.
//!
//! ```text
//!  63            32   31      30                 0
//! ┌────────────────┬────────┬────────────────────┐
//! │ generation     │ CLOSED │ shares             │
//! └────────────────┴────────┴────────────────────┘
//! ```
//!
//! The mark (`RETAINED` in the lifecycle word) is what frees look at: a
//! free or take of a retained message answers `QueueOwned` in the same
//! compare-and-swap that would take it, so a free costs nothing for shares.
//! The count word belongs to the slot, not to the message: it is read and
//! changed without any guard, so a retain, a non-last release or a count
//! never waits behind a writer and never shows up as a guard to a free.
//!
//! Protocol (invariants H0–H4):
//! - H0: a fresh count word is *closed* (generation 0 with `CLOSED` set),
//!   never a valid open word: a slot's first message (generation 0) must
//!   not find "open, 0 shares" there before its first retain publishes the
//!   count, or a racing release would free it and a racing retain would be
//!   overwritten (issue 18).
//! - H1: the retain that sets the mark (by CAS, from a present unmarked
//!   word of the token's generation) then opens the count word with its
//!   shares; no other thread changes the count word of that generation
//!   before it is open.
//! - H2: changing the count needs a CAS from an open word of the token's
//!   generation, with the mark set.
//! - H3: the last release closes the count word by CAS from 1 share, then
//!   frees the message in one CAS that also clears the mark. If a guard is
//!   live it reopens the word with 1 share and answers `BorrowActive`.
//! - H4: a count word that is closed, or of another generation, while the
//!   mark is set for the token, belongs to a retain or release in flight
//!   that finishes without waiting on anything: readers spin until it does.

use crate::arena::Core;
use crate::sync::{AtomicU64, Ordering, spin_loop};
use crate::{MemoryError, Message, MessageToken};

const CLOSED: u64 = 1 << 31;
const COUNT_MASK: u64 = CLOSED - 1;
/// The most shares one message can have.
const MAX_SHARES: u64 = COUNT_MASK;

/// A slot's share count word.
#[derive(Debug)]
pub(crate) struct Shares(AtomicU64);

impl Default for Shares {
    /// Closed, of generation 0 (H0): a reader spins on it until the first
    /// retain publishes an open count.
    fn default() -> Self {
        // Mutation `share_word_starts_open`: the fresh word reads as "open,
        // generation 0, no shares", as before issue 18.
        if cfg!(slotarena_mutation = "share_word_starts_open") {
            return Shares(AtomicU64::new(0));
        }
        Shares(AtomicU64::new(CLOSED))
    }
}

#[inline]
const fn open(token: MessageToken, shares: u64) -> u64 {
    ((token.generation() as u64) << 32) | shares
}

type ManagerCore<P> = Core<Message<P>, Shares>;

/// The open count word of the retained message `token` names, once any
/// racing retain or release has finished (H4); `Ok(None)` if the message
/// has no share, `Err` what the arena answers for the token.
#[inline]
fn load_open<P>(
    core: &ManagerCore<P>,
    token: MessageToken,
) -> Result<Option<(&AtomicU64, u64)>, MemoryError> {
    let (_, shares) = core.place(token)?;
    loop {
        if !core.is_retained(token)? {
            return Ok(None);
        }
        // Acquire pairs with the Release that opened or reopened the word.
        let word = shares.0.load(Ordering::Acquire);
        if word & !COUNT_MASK == open(token, 0) {
            return Ok(Some((&shares.0, word)));
        }
        spin_loop();
    }
}

/// Adds `count` shares and returns the total.
pub(super) fn retain<P>(
    core: &ManagerCore<P>,
    token: MessageToken,
    count: u32,
) -> Result<u32, MemoryError> {
    let count = u64::from(count);
    if count > MAX_SHARES {
        core.check(token)?;
        return Err(MemoryError::TooManyShares);
    }
    if count == 0 {
        // Nothing to add: do not mark a message that has no share.
        return self::count(core, token);
    }
    loop {
        let (_, shares) = core.place(token)?;
        if core.retain(token)? {
            // H1: we set the mark, so the count word is ours to open.
            shares.0.store(open(token, count), Ordering::Release);
            return Ok(count as u32);
        }
        let Some((word, seen)) = load_open(core, token)? else {
            // The last share was released meanwhile: mark it afresh.
            continue;
        };
        let total = (seen & COUNT_MASK) + count;
        if total > MAX_SHARES {
            return Err(MemoryError::TooManyShares);
        }
        // Relaxed: a count; the message itself is ordered by its lock.
        if word
            .compare_exchange(
                seen,
                open(token, total),
                Ordering::Relaxed,
                Ordering::Relaxed,
            )
            .is_ok()
        {
            return Ok(total as u32);
        }
    }
}

/// Releases one share; the last one frees the message.
pub(super) fn release<P>(core: &ManagerCore<P>, token: MessageToken) -> Result<u32, MemoryError> {
    // Mutation `release_waits_for_writer`: look at the message under its
    // lock first, as v1 did.
    if cfg!(slotarena_mutation = "release_waits_for_writer") {
        drop(core.read::<MessageToken>(token, true)?);
    }
    loop {
        let Some((word, seen)) = load_open(core, token)? else {
            return Err(MemoryError::NotShared);
        };
        let shares = seen & COUNT_MASK;
        if shares > 1 {
            // Mutation `release_decrements_blindly`: decrement without
            // checking the count is still the one looked at.
            if cfg!(slotarena_mutation = "release_decrements_blindly") {
                word.fetch_sub(1, Ordering::Relaxed);
                return Ok((shares - 1) as u32);
            }
            if word
                .compare_exchange(seen, seen - 1, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                return Ok((shares - 1) as u32);
            }
            continue;
        }
        debug_assert_eq!(shares, 1, "an open count word of a retained message");
        // H3: close, then free and clear the mark in one step.
        if word
            .compare_exchange(seen, seen | CLOSED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            continue;
        }
        return match core.free(token, true) {
            // A poisoned message is freed all the same.
            Ok(()) => Ok(0),
            Err(error) => {
                // Release pairs with `load_open`'s Acquire.
                word.store(seen, Ordering::Release);
                Err(error)
            }
        };
    }
}

/// Outstanding shares.
pub(super) fn count<P>(core: &ManagerCore<P>, token: MessageToken) -> Result<u32, MemoryError> {
    Ok(load_open(core, token)?.map_or(0, |(_, seen)| (seen & COUNT_MASK) as u32))
}
