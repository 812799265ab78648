//! Queue share counts: one generation-tagged word per slot, beside the
//! slot's lock rather than under it.
//!
//! ```text
//!  63            32   31      30                 0
//! ┌────────────────┬────────┬────────────────────┐
//! │ generation     │ CLOSED │ shares             │
//! └────────────────┴────────┴────────────────────┘
//! ```
//!
//! The word belongs to the slot, not to the message, so it outlives every
//! message and can be read without a guard: a retain, a non-last release or
//! a count never takes the slot's lock, so none waits behind a writer and
//! none shows up as a guard to a concurrent free (the seed's defects 2
//! and 3).
//!
//! Protocol (invariants H1–H3):
//! - H1: a store opens the word (`generation`, not closed, 0 shares) before
//!   it hands the token out.
//! - H2: changing the count needs a CAS from an open word of the token's
//!   generation.
//! - H3: freeing the message (free, take, last release) first closes the
//!   word by CAS, from 0 shares (or 1 for the last release); while it is
//!   closed nothing else changes it. If the arena then refuses the take
//!   (a guard is live) the closer reopens it as it was; otherwise it stays
//!   closed until the slot's next store.
//!
//! A thread that finds the word closed, or of another generation, while the
//! arena still holds the token's message, is racing a free or a store that
//! completes without waiting on anything; it spins until it does.

use crate::arena::Core;
use crate::sync::{AtomicU64, Ordering, spin_loop};
use crate::{MemoryError, Message, MessageToken};

const CLOSED: u64 = 1 << 31;
const COUNT_MASK: u64 = CLOSED - 1;
/// The most shares one message can have.
const MAX_SHARES: u64 = COUNT_MASK;

/// A slot's share word.
#[derive(Debug, Default)]
pub(super) struct Shares(AtomicU64);

impl Shares {
    /// Opens the word for the message `token` names, just stored (H1).
    #[inline]
    pub(super) fn open(&self, token: MessageToken) {
        // Relaxed: the token reaches other threads only through a channel
        // that orders this store before their use of it.
        self.0.store(open(token, 0), Ordering::Relaxed);
    }
}

#[inline]
const fn open(token: MessageToken, shares: u64) -> u64 {
    ((token.generation() as u64) << 32) | shares
}

type ManagerCore<P> = Core<Message<P>, Shares>;

/// The open share word of the live message `token` names, once any racing
/// store or free has finished; `Err` is what the arena answers for it.
#[inline]
fn load_open<P>(
    core: &ManagerCore<P>,
    token: MessageToken,
) -> Result<(&AtomicU64, u64), MemoryError> {
    let (_, shares) = core.place(token)?;
    loop {
        core.check(token)?;
        // Acquire pairs with the Release of a reopening closer.
        let word = shares.0.load(Ordering::Acquire);
        if word & !COUNT_MASK == open(token, 0) {
            return Ok((&shares.0, word));
        }
        spin_loop();
    }
}

/// Closes the word `seen` (H3) if it is still what it was.
#[inline]
fn close(word: &AtomicU64, seen: u64) -> bool {
    // Mutation `shares_close_ignores_count`: close whatever the count is now.
    if cfg!(slotarena_mutation = "shares_close_ignores_count") {
        let now = word.fetch_or(CLOSED, Ordering::Acquire);
        return now & !COUNT_MASK == seen & !COUNT_MASK;
    }
    word.compare_exchange(
        seen,
        seen & !COUNT_MASK | CLOSED,
        Ordering::Acquire,
        Ordering::Relaxed,
    )
    .is_ok()
}

/// Free or take a message with no outstanding share: `QueueOwned` if it has
/// some, `BorrowActive` if a guard is live; `Poisoned` after freeing a
/// poisoned message.
#[inline]
pub(super) fn take_unshared<P>(
    core: &ManagerCore<P>,
    token: MessageToken,
) -> Result<Message<P>, MemoryError> {
    loop {
        let (word, seen) = load_open(core, token)?;
        if seen & COUNT_MASK != 0 {
            // The contract orders a live guard before outstanding shares.
            return Err(if core.is_guarded(token)? {
                MemoryError::BorrowActive
            } else {
                MemoryError::QueueOwned
            });
        }
        if close(word, seen) {
            return finish_take(core, token, word, seen);
        }
    }
}

/// Takes the message after the word was closed from `seen`; reopens it if
/// the arena refuses.
#[inline]
fn finish_take<P>(
    core: &ManagerCore<P>,
    token: MessageToken,
    word: &AtomicU64,
    seen: u64,
) -> Result<Message<P>, MemoryError> {
    let taken = core.take(token, false);
    if let Err(MemoryError::BorrowActive) = taken {
        // Release pairs with `load_open`'s Acquire.
        word.store(seen, Ordering::Release);
    }
    taken
}

/// Adds `count` shares.
pub(super) fn retain<P>(
    core: &ManagerCore<P>,
    token: MessageToken,
    count: u32,
) -> Result<u32, MemoryError> {
    loop {
        let (word, seen) = load_open(core, token)?;
        if core.is_poisoned(token)? {
            return Err(MemoryError::Poisoned);
        }
        let total = (seen & COUNT_MASK) + u64::from(count);
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
        drop(core.read(token, true)?);
    }
    loop {
        let (word, seen) = load_open(core, token)?;
        match seen & COUNT_MASK {
            0 => return Err(MemoryError::NotShared),
            1 => {
                if !close(word, seen) {
                    continue;
                }
                return match finish_take(core, token, word, seen) {
                    // Freed; a poisoned message is freed all the same.
                    Ok(_) | Err(MemoryError::Poisoned) => Ok(0),
                    Err(error) => Err(error),
                };
            }
            shares => {
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
            }
        }
    }
}

/// Outstanding shares.
pub(super) fn count<P>(core: &ManagerCore<P>, token: MessageToken) -> Result<u32, MemoryError> {
    load_open(core, token).map(|(_, seen)| (seen & COUNT_MASK) as u32)
}
