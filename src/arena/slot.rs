//! One arena slot: its lifecycle word (see `word.rs`) and its value, and
//! every transition of the word.
//!
//! Invariants, cited as S1…S5 elsewhere:
//! - S1: the value is initialised exactly when the state is not `VACANT`,
//!   but for one window: a value dropped while its slot is held
//!   (`vacate_dropping`) leaves the held word (`REMOVING`/`TAKING`) in
//!   place until the free-list push writes the vacant word with its
//!   link. Nothing reads the value in that window: the held word keeps
//!   every lock and pin out (S2), and only `&mut` paths, which cannot
//!   overlap a push, trust the state alone.
//! - S2: a thread that set `WRITER` (a write guard, or the reclaimer of a
//!   removed or taken value) has exclusive access to the value; a thread
//!   whose CAS added a reader has shared access; `WRITER` and a non-zero
//!   reader count never coexist.
//! - S3: only the owner of a vacant slot (the thread that popped it, or the
//!   reclaimer that is about to push it) writes a vacant word, with plain
//!   stores. Every other write is either a read-modify-write by a thread
//!   that holds a guard on the value (an unlock: the word cannot be vacant
//!   while a guard is held, S1) or a CAS whose expected value has a
//!   non-vacant state, so none can land on a vacant word.
//! - S4: the generation moves on when a value leaves the slot, so no token
//!   issued before matches afterwards, and a stale CAS always fails. A
//!   slot whose value had the last generation is retired instead (its next
//!   generation would wrap to one an old token carries): it never takes a
//!   value again.
//! - S5: whoever clears `PARKED` unparks every waiter on the word, and a
//!   waiter sleeps only while the word still equals what it saw with
//!   `PARKED` set (checked under the parking lot's lock), so no wake-up is
//!   lost.

#![allow(unsafe_code)]

use core::mem::MaybeUninit;

use super::word::{
    self, DROP_PENDING, MAX_READERS, ONE_READER, PARKED, POISONED, PRESENT, REMOVING, RETAINED,
    RETIRED_WORD, STATE_MASK, TAKING, VACANT, WRITER, drop_pending, generation, guarded, readers,
    state, with_state,
};
use crate::sync::{AtomicU64, Backoff, Ordering, UnsafeCell, fence, park, unpark_all};
use crate::{MemoryError, MessageToken};

/// The success ordering of a read unlock's guess, Release (see
/// `Slot::unlock_read`).
// Mutation `unlock_read_relaxed` (loom-mutations.sh): the lone reader's
// unlock publishes nothing, so a writer after it may race its reads.
const UNLOCK_READ_ORDER: Ordering = if cfg!(slotarena_mutation = "unlock_read_relaxed") {
    Ordering::Relaxed
} else {
    Ordering::Release
};

/// A slot of the concurrent arena.
pub(crate) struct Slot<T> {
    word: AtomicU64,
    value: UnsafeCell<MaybeUninit<T>>,
}

// SAFETY: a slot hands its value to other threads by reference (guards) and
// by value (take, or a drop in another thread's guard), so sharing a slot
// needs `T: Send + Sync`, and moving one needs `T: Send`.
unsafe impl<T: Send> Send for Slot<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync> Sync for Slot<T> {}

impl<T> Default for Slot<T> {
    /// A vacant slot of generation 0.
    fn default() -> Self {
        Slot {
            word: AtomicU64::new(word::vacant(0, word::NIL)),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }
}

/// Whether `word` holds the value `token` names, in the contract's order:
/// a generation the slot has not reached yet (a token never handed out) is
/// `BadToken`, an empty slot or a dead token is `NotAllocated`, a newer
/// value in the slot is `StaleToken`.
#[inline]
fn check(word: u64, token: MessageToken) -> Result<(), MemoryError> {
    let same = generation(word) == token.generation();
    match state(word) {
        PRESENT if same => Ok(()),
        // A vacant word holds the generation its next value gets, any other
        // the generation of its value: tokens beyond it were never issued.
        _ if token.generation() > generation(word) => Err(MemoryError::BadToken),
        PRESENT => Err(MemoryError::StaleToken),
        VACANT => Err(MemoryError::NotAllocated),
        // Mutation `check_accepts_dying_value`: a removed or taken value
        // still answers to its token.
        _ if same && cfg!(slotarena_mutation = "check_accepts_dying_value") => Ok(()),
        _ if same => Err(MemoryError::NotAllocated),
        _ => Err(MemoryError::StaleToken),
    }
}

impl<T> Slot<T> {
    /// The lifecycle word now. Relaxed: every decision taken on it is
    /// confirmed by a CAS, or made by the slot's owner (S3).
    #[inline]
    pub(super) fn word(&self) -> u64 {
        self.word.load(Ordering::Relaxed)
    }

    /// Where waiters on this slot park.
    fn key(&self) -> usize {
        core::ptr::from_ref(&self.word).addr()
    }

    /// The present value's token check, without locking.
    #[inline]
    pub(super) fn check(&self, token: MessageToken) -> Result<u64, MemoryError> {
        let word = self.word();
        check(word, token).map(|()| word)
    }

    /// The free-list link of a vacant slot (any value if it is not vacant
    /// any more: the list's tag makes that harmless).
    #[inline]
    pub(super) fn next_free(&self) -> u32 {
        word::next_free(self.word())
    }

    /// Sets the free-list link of a vacant slot the caller owns (S3).
    #[inline]
    pub(super) fn set_next_free(&self, next: u32) {
        self.link_vacant(self.word(), next);
    }

    /// [`set_next_free`](Self::set_next_free) for an owner that knows the
    /// vacant word the slot takes, `vacant`: the slot's word, or, for the
    /// reclaimer of a value just dropped, the word `vacate_dropping`
    /// answered while the slot still holds its held word (of the
    /// generation before), which this store replaces.
    #[inline]
    pub(super) fn link_vacant(&self, vacant: u64, next: u32) {
        debug_assert!(
            {
                let now = self.word();
                let linked = state(now) == VACANT && generation(now) == generation(vacant);
                let held = state(now) != VACANT
                    && now & WRITER != 0
                    && generation(now).wrapping_add(1) == generation(vacant);
                linked || held
            },
            "linking {vacant:#x}, not the slot's vacant word {:#x}",
            self.word()
        );
        // Relaxed: the list's Release push publishes it (S3).
        self.word
            .store(word::vacant(generation(vacant), next), Ordering::Relaxed);
    }

    /// Moves a vacant slot's generation (the one its next value gets)
    /// forward to `generation`, keeping its free-list link: for the test
    /// hook `SlotArena::__set_free_generation`, whose `&mut` arena with no
    /// other handle excludes every other access, and for loading a saved
    /// arena. Never backward, so a key issued before never matches again
    /// (S4). Returns whether the slot was vacant, not retired, and not past
    /// `generation` already.
    pub(super) fn set_free_generation(&self, generation: u32) -> bool {
        let word = self.word();
        if state(word) != VACANT || self.is_retired() || generation < word::generation(word) {
            return false;
        }
        self.word.store(
            word::vacant(generation, word::next_free(word)),
            Ordering::Relaxed,
        );
        true
    }

    /// Puts `value` into the vacant slot the caller popped, and publishes
    /// it with one Release store. Returns the value's generation.
    #[inline]
    pub(super) fn fill(&self, value: T) -> u32 {
        let word = self.word();
        debug_assert!(
            state(word) == VACANT && word != RETIRED_WORD,
            "filling a slot in use or retired: {word:#x}"
        );
        // SAFETY: the caller popped the slot, so it owns it (S3): no guard
        // exists and no other thread can write the value (S1: it is vacant).
        self.value.with_mut(|cell| unsafe { (*cell).write(value) });
        let generation = generation(word);
        // Release pairs with the Acquire of every lock: the value is
        // visible before the word says it is present.
        self.word
            .store(word::present(generation), Ordering::Release);
        generation
    }

    /// A shared pointer to the value, for a guard that holds the lock.
    #[inline]
    pub(super) fn value_ptr(&self) -> *const T {
        self.value.with(|cell| cell.cast::<T>())
    }

    /// An exclusive pointer to the value, for a guard that holds `WRITER`.
    #[inline]
    pub(super) fn value_mut_ptr(&self) -> *mut T {
        self.value.with_mut(|cell| cell.cast::<T>())
    }

    /// Waits for the word to change from `seen`: spins a little, then
    /// parks (S5). Returns the word to look at next.
    #[cold]
    fn wait(&self, seen: u64, backoff: &Backoff) -> u64 {
        if !backoff.is_completed() {
            backoff.snooze();
            return self.word();
        }
        // Mutation `wait_without_parked_bit`: sleep without announcing it in
        // the word, so an unlock does not know to wake us.
        if cfg!(slotarena_mutation = "wait_without_parked_bit") {
            park(self.key(), || self.word() == seen);
            return self.word();
        }
        let parked = seen | PARKED;
        if seen & PARKED == 0
            && let Err(now) =
                self.word
                    .compare_exchange_weak(seen, parked, Ordering::Relaxed, Ordering::Relaxed)
        {
            return now;
        }
        park(self.key(), || self.word() == parked);
        self.word()
    }

    /// For a task about to await [`listen_for_unpark`](crate::sync::listen_for_unpark):
    /// marks the word `PARKED` if the lock `token` names is still taken
    /// (for writing, or for reading if `write`). Returns whether the task
    /// should await; `false` means: try the lock again (it may be free, or
    /// the token may have died).
    pub(super) fn park_async(&self, token: MessageToken, write: bool) -> bool {
        let word = self.word();
        let taken = if write {
            guarded(word)
        } else {
            word & WRITER != 0
        };
        if check(word, token).is_err() || word & POISONED != 0 || !taken {
            return false;
        }
        word & PARKED != 0
            || cfg!(slotarena_mutation = "async_park_without_mark")
            || self
                .word
                .compare_exchange(word, word | PARKED, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// Wakes the waiters if `before` (the word a successful CAS replaced)
    /// had `PARKED` set; the CAS cleared it (S5).
    #[inline]
    fn wake_if_parked(&self, before: u64) {
        if before & PARKED != 0 {
            unpark_all(self.key());
        }
    }

    /// Takes a read lock on the value `token` names. Waits while a writer
    /// holds it if `blocking`, else answers `AlreadyBorrowed`.
    #[inline]
    pub(super) fn lock_read(&self, token: MessageToken, blocking: bool) -> Result<(), MemoryError> {
        // First guess: the value is present, unshared and unguarded, which
        // saves a load in the common case; a wrong guess returns the word.
        // The guess is a word every rule below accepts, so this one CAS is
        // the fast path, inlined; anything else goes out of line.
        let guess = word::present(token.generation());
        // Acquire pairs with `fill`'s and the last writer's Release.
        match self.word.compare_exchange_weak(
            guess,
            guess + ONE_READER,
            Ordering::Acquire,
            Ordering::Relaxed,
        ) {
            Ok(_) => Ok(()),
            Err(now) => self.lock_read_from(token, blocking, now),
        }
    }

    /// [`lock_read`](Self::lock_read) once the guess failed: `word` is the
    /// word the failed compare-and-swap found.
    #[inline(never)]
    fn lock_read_from(
        &self,
        token: MessageToken,
        blocking: bool,
        mut word: u64,
    ) -> Result<(), MemoryError> {
        let backoff = Backoff::new();
        loop {
            // Mutation `lock_read_ignores_writer`: read beside a writer.
            let writer = if cfg!(slotarena_mutation = "lock_read_ignores_writer") {
                0
            } else {
                WRITER
            };
            if word & (writer | POISONED | STATE_MASK) == PRESENT
                // Mutation `lock_read_skips_generation`: the guessed word
                // is not the token's, any present value passes.
                && (generation(word) == token.generation()
                    || cfg!(slotarena_mutation = "lock_read_skips_generation"))
            {
                if readers(word) >= MAX_READERS {
                    return Err(MemoryError::TooManyReaders);
                }
                // Acquire pairs with `fill`'s and the last writer's Release.
                // The CAS fails unless the generation still matches (S4).
                match self.word.compare_exchange_weak(
                    word,
                    word + ONE_READER,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return Ok(()),
                    Err(now) => {
                        // Look at the fresh word from the top.
                        word = now;
                        continue;
                    }
                }
            }
            if cfg!(slotarena_mutation = "lock_read_skips_generation") {
                if state(word) != PRESENT {
                    return Err(MemoryError::NotAllocated);
                }
            } else {
                check(word, token)?;
            }
            if word & POISONED != 0 {
                return Err(MemoryError::Poisoned);
            }
            if word & WRITER != 0 {
                if !blocking {
                    return Err(MemoryError::AlreadyBorrowed);
                }
                word = self.wait(word, &backoff);
            }
        }
    }

    /// Takes `count` read locks on the value `token` names at once, as
    /// `count` calls of [`lock_read`](Self::lock_read) would, without
    /// waiting: for the test hook `SlotArena::__forget_read_locks`. Nobody
    /// ever unlocks them, exactly as if their guards were `mem::forget`ed.
    pub(super) fn forget_read_locks(
        &self,
        token: MessageToken,
        count: u64,
    ) -> Result<(), MemoryError> {
        let mut word = self.word();
        loop {
            check(word, token)?;
            if word & POISONED != 0 {
                return Err(MemoryError::Poisoned);
            }
            if word & WRITER != 0 {
                return Err(MemoryError::AlreadyBorrowed);
            }
            if count > MAX_READERS - readers(word) {
                return Err(MemoryError::TooManyReaders);
            }
            // Acquire, as `lock_read`'s; the CAS fails unless the
            // generation still matches (S4).
            match self.word.compare_exchange_weak(
                word,
                word + count * ONE_READER,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(now) => word = now,
            }
        }
    }

    /// Takes the write lock on the value `token` names. Waits while any
    /// guard holds it if `blocking`, else answers `AlreadyBorrowed`.
    #[inline]
    pub(super) fn lock_write(
        &self,
        token: MessageToken,
        blocking: bool,
    ) -> Result<(), MemoryError> {
        let mut word = word::present(token.generation());
        let backoff = Backoff::new();
        loop {
            // Mutation `lock_write_ignores_guards`: write beside any guard.
            if word & (POISONED | STATE_MASK) == PRESENT
                && generation(word) == token.generation()
                && (!guarded(word) || cfg!(slotarena_mutation = "lock_write_ignores_guards"))
            {
                // Acquire pairs with the Release of the last unlock.
                match self.word.compare_exchange_weak(
                    word,
                    word | WRITER,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return Ok(()),
                    Err(now) => {
                        // Look at the fresh word from the top.
                        word = now;
                        continue;
                    }
                }
            }
            check(word, token)?;
            if word & POISONED != 0 {
                return Err(MemoryError::Poisoned);
            }
            if guarded(word) {
                if !blocking {
                    return Err(MemoryError::AlreadyBorrowed);
                }
                word = self.wait(word, &backoff);
            }
        }
    }

    /// Drops a read lock on the value of `generation`. `Err` with the word
    /// from before the unlock unless this was the lone reader of a value
    /// nobody waits for: the caller passes that word to
    /// [`after_last_reader`](Self::after_last_reader), out of line, so a
    /// guard's drop inlines only the common case.
    ///
    /// The common case is a guess, as the lock's: the word the lock's own
    /// first guess made, present with this one reader and no flag. A
    /// compare-and-swap from it to the bare present word has nothing to
    /// test afterwards, and both words are the ones the lock just built;
    /// any other word (more readers, a waiter, a removal, a flag) fails
    /// the guess and goes out of line to the subtraction.
    #[inline]
    pub(super) fn unlock_read(&self, generation: u32) -> Result<(), u64> {
        let idle = word::present(generation);
        // Release, as the subtraction's below. Only the lone reader's word
        // matches, so the swap writes exactly what the subtraction would.
        match self.word.compare_exchange_weak(
            idle + ONE_READER,
            idle,
            UNLOCK_READ_ORDER,
            Ordering::Relaxed,
        ) {
            Ok(_) => Ok(()),
            Err(_) => self.unlock_read_shared(),
        }
    }

    /// [`unlock_read`](Self::unlock_read) once its guess failed: among
    /// other readers, or with something more in the word.
    #[inline(never)]
    fn unlock_read_shared(&self) -> Result<(), u64> {
        // Release: our reads of the value happen before the next writer's
        // access. One read-modify-write, no retry: the word is never
        // vacant while we hold a reader (S1), so the subtraction cannot
        // touch a free-list link.
        let before = self.word.fetch_sub(ONE_READER, Ordering::Release);
        debug_assert!(
            readers(before) > 0,
            "read unlock without a reader: {before:#x}"
        );
        // One compare: the lone reader of a value nobody waits for whose
        // word the guess missed (a flag such as RETAINED, or a spurious
        // failure). Any other reader goes on to `after_last_reader`, where
        // most find nothing to do.
        if word::lone_reader_of_present(before) {
            Ok(())
        } else {
            Err(before)
        }
    }

    /// The rare work of the last reader, after [`unlock_read`](Self::unlock_read)
    /// answered `Err(before)`: none unless this was the last reader; then
    /// wake the waiters, or reclaim a removed value: then the caller holds
    /// the slot for reclaiming and gets the value's generation.
    #[cold]
    pub(super) fn after_last_reader(&self, before: u64) -> Option<u32> {
        if !word::last_reader_has_work(before) {
            // Not the last reader, or the last with nothing to do.
            return None;
        }
        // Mutation `unlock_read_skips_reclaim`: the last reader of a
        // removed value leaves it in its slot.
        if state(before) == REMOVING && !cfg!(slotarena_mutation = "unlock_read_skips_reclaim") {
            // Nobody else writes a removed word without guards (S3, S5:
            // nobody parks on it), so the slot is ours to reclaim. Acquire:
            // every other reader's accesses happen before the drop.
            fence(Ordering::Acquire);
            self.word
                .store((before - ONE_READER) | WRITER, Ordering::Relaxed);
            return Some(generation(before));
        }
        if before & PARKED != 0 {
            // Clear the mark only if the word is still what our unlock left
            // (S3: never write a word that may have gone vacant); if it
            // moved on, whoever moved it took over the mark. Wake the
            // waiters either way: they look again.
            let after = before - ONE_READER;
            let _ = self.word.compare_exchange(
                after,
                after & !PARKED,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
            unpark_all(self.key());
        }
        None
    }

    /// Drops the write lock, poisoning the value if `poison`. If the value
    /// was removed meanwhile, the caller keeps exclusive access and
    /// reclaims the slot: returns the value's generation.
    #[inline]
    pub(super) fn unlock_write(&self, poison: bool) -> Option<u32> {
        let mut word = self.word();
        loop {
            debug_assert!(
                word & WRITER != 0,
                "write unlock without a writer: {word:#x}"
            );
            // Mutation `unlock_write_skips_reclaim`: a writer whose value was
            // removed meanwhile leaves it in its slot.
            let reclaim =
                state(word) == REMOVING && !cfg!(slotarena_mutation = "unlock_write_skips_reclaim");
            let mut next = word & !PARKED;
            if !reclaim {
                next &= !WRITER;
            }
            // Mutation `unlock_write_forgets_poison`: a panicking writer
            // leaves no mark.
            if poison && !cfg!(slotarena_mutation = "unlock_write_forgets_poison") {
                next |= POISONED;
            }
            // Release pairs with the next lock's Acquire: our writes to the
            // value happen before its accesses.
            // Mutation `unlock_write_relaxed`: the writes are not published.
            let order = if cfg!(slotarena_mutation = "unlock_write_relaxed") {
                Ordering::Relaxed
            } else {
                Ordering::Release
            };
            match self
                .word
                .compare_exchange_weak(word, next, order, Ordering::Relaxed)
            {
                Ok(_) => {
                    self.wake_if_parked(word);
                    return reclaim.then_some(generation(word));
                }
                Err(now) => word = now,
            }
        }
    }

    /// Kills `token` at once. If no guard holds the value the caller
    /// reclaims the slot now (returns the generation); otherwise the last
    /// guard's unlock will.
    #[inline]
    pub(super) fn remove(&self, token: MessageToken) -> Result<Option<u32>, MemoryError> {
        // First guess, as `lock_read`'s: present, unguarded, nobody parked,
        // which saves a load; the CAS, inlined, is the whole common case.
        let guess = word::present(token.generation());
        // Acquire: we reclaim (see below).
        match self.word.compare_exchange_weak(
            guess,
            with_state(guess, REMOVING) | WRITER,
            Ordering::Acquire,
            Ordering::Relaxed,
        ) {
            Ok(_) => Ok(Some(token.generation())),
            Err(now) => self.remove_from(token, now),
        }
    }

    /// [`remove`](Self::remove) once the guess failed: `word` is the word
    /// the failed compare-and-swap found.
    #[inline(never)]
    fn remove_from(&self, token: MessageToken, mut word: u64) -> Result<Option<u32>, MemoryError> {
        loop {
            if state(word) == PRESENT && generation(word) == token.generation() {
                let idle = !guarded(word);
                let mut next = with_state(word & !PARKED, REMOVING);
                if idle {
                    next |= WRITER;
                }
                // Acquire when we reclaim: the last guard's accesses happen
                // before the drop. Otherwise that guard's unlock reclaims.
                let order = if idle {
                    Ordering::Acquire
                } else {
                    Ordering::Relaxed
                };
                match self
                    .word
                    .compare_exchange_weak(word, next, order, Ordering::Relaxed)
                {
                    Ok(_) => {
                        // Waiters for this value wake to `NotAllocated`.
                        self.wake_if_parked(word);
                        return Ok(idle.then_some(generation(word)));
                    }
                    Err(now) => word = now,
                }
            } else {
                check(word, token)?;
                // Unreachable unless `check` is broken (a loom mutation):
                // look again rather than spin on a stale copy.
                word = self.word();
            }
        }
    }

    /// Kills `token` and takes exclusive access to its value, waiting for
    /// live guards to drop if `blocking` (else `BorrowActive`, changing
    /// nothing). A retained value answers `QueueOwned`, unless `last_share`
    /// says the caller releases its last share, which clears the mark.
    /// Returns the word it holds (generation and poison).
    #[inline]
    pub(super) fn begin_take(
        &self,
        token: MessageToken,
        blocking: bool,
        last_share: bool,
    ) -> Result<u64, MemoryError> {
        // First guess, as `remove`'s: present, unguarded, not retained,
        // nobody parked; it passes every test below unless `last_share`
        // (which expects the mark), and the CAS, inlined, is the whole
        // common case.
        let guess = word::present(token.generation());
        if !last_share {
            let held = with_state(guess, TAKING) | WRITER;
            // Acquire, as below.
            match self
                .word
                .compare_exchange_weak(guess, held, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return Ok(held),
                Err(now) => return self.begin_take_from(token, blocking, last_share, now),
            }
        }
        self.begin_take_from(token, blocking, last_share, self.word())
    }

    /// [`begin_take`](Self::begin_take) from `word`, the word as last seen.
    #[inline(never)]
    fn begin_take_from(
        &self,
        token: MessageToken,
        blocking: bool,
        last_share: bool,
        mut word: u64,
    ) -> Result<u64, MemoryError> {
        loop {
            check(word, token)?;
            let idle = !guarded(word);
            if !idle && !blocking {
                self.mutation_kill_then_refuse(word);
                return Err(MemoryError::BorrowActive);
            }
            match (word & RETAINED != 0, last_share) {
                // Mutation `free_ignores_retained`: free a message that
                // still has queue shares.
                (true, false) if !cfg!(slotarena_mutation = "free_ignores_retained") => {
                    return Err(MemoryError::QueueOwned);
                }
                (false, true) => return Err(MemoryError::NotShared),
                _ => {}
            }
            let mut next = with_state(word & !(PARKED | RETAINED), TAKING);
            if idle {
                next |= WRITER;
            }
            match self
                .word
                .compare_exchange_weak(word, next, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => {
                    self.wake_if_parked(word);
                    if idle {
                        return Ok(next);
                    }
                    word = next;
                    break;
                }
                Err(now) => word = now,
            }
        }
        // The token is dead; only this thread may set `WRITER` now (S2).
        let backoff = Backoff::new();
        loop {
            if !guarded(word) {
                match self.word.compare_exchange_weak(
                    word,
                    word | WRITER,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return Ok(word | WRITER),
                    Err(now) => word = now,
                }
            } else {
                word = self.wait(word, &backoff);
            }
        }
    }

    /// Mutation `try_take_kills_then_refuses`: a refused `try_take` or
    /// `free` marks the value taken, then answers `BorrowActive` anyway.
    #[inline]
    fn mutation_kill_then_refuse(&self, word: u64) {
        if cfg!(slotarena_mutation = "try_take_kills_then_refuses") {
            let _ = self.word.compare_exchange(
                word,
                with_state(word, TAKING),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    /// For `try_take` (pins.rs): takes the write lock on the idle value
    /// `token` names, checked as `begin_take` checks it (a poisoned value
    /// passes, a guarded one answers `BorrowActive`, a retained one
    /// `QueueOwned`), without killing the token yet: the caller looks for
    /// pinned readers first, and refusing must change nothing.
    pub(super) fn lock_for_take(&self, token: MessageToken) -> Result<(), MemoryError> {
        let mut word = self.word();
        loop {
            check(word, token)?;
            if guarded(word) {
                self.mutation_kill_then_refuse(word);
                return Err(MemoryError::BorrowActive);
            }
            if word & RETAINED != 0 {
                return Err(MemoryError::QueueOwned);
            }
            // Acquire pairs with the Release of the last unlock.
            match self.word.compare_exchange_weak(
                word,
                word | WRITER,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(now) => word = now,
            }
        }
    }

    /// Kills the token of the value this thread holds by
    /// [`lock_for_take`](Self::lock_for_take), keeping exclusive access for
    /// moving it out: returns the word it holds. If a `remove` killed the
    /// token meanwhile, it won: `Err` with the generation, and the caller
    /// reclaims the slot (as a writer whose value was removed does).
    pub(super) fn take_locked(&self) -> Result<u64, u32> {
        let mut word = self.word();
        loop {
            debug_assert!(word & WRITER != 0, "take without the lock: {word:#x}");
            if state(word) == REMOVING {
                return Err(generation(word));
            }
            let next = with_state(word & !PARKED, TAKING);
            // Relaxed: we hold `WRITER`; the lock's Acquire ordered us.
            match self
                .word
                .compare_exchange_weak(word, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => {
                    self.wake_if_parked(word);
                    return Ok(next);
                }
                Err(now) => word = now,
            }
        }
    }

    /// A pinned read's look at the word (pins.rs, P1), after its record
    /// names this slot: `Ok` if the value `token` names may be read
    /// (present, not poisoned, no writer), else what `try_get` would answer.
    #[inline]
    pub(super) fn pinned_check(&self, token: MessageToken) -> Result<(), MemoryError> {
        // Acquire pairs with `fill`'s and the last writer's Release (every
        // later change is a read-modify-write, which continues its release
        // sequence), so the value's last writes are visible.
        let word = self.word.load(Ordering::Acquire);
        check(word, token)?;
        if word & POISONED != 0 {
            return Err(MemoryError::Poisoned);
        }
        if word & WRITER != 0 {
            return Err(MemoryError::AlreadyBorrowed);
        }
        Ok(())
    }

    /// Called by the holder of a removed or taken value for reclaiming
    /// (after `remove`, `begin_take` or a last unlock answered its
    /// generation) before it drops it in place. If `pinned` (which fences,
    /// pins.rs P1) finds a pinned reader on the slot, the drop is left to
    /// the last one (P3): the word becomes "drop pending" and `true` comes
    /// back, and the caller must not touch the value again. `false`: the
    /// caller still holds the slot and drops the value.
    #[inline]
    pub(super) fn keep_for_pinned(&self, pinned: impl Fn() -> bool) -> bool {
        if !pinned() {
            return false;
        }
        self.leave_to_pinned(pinned)
    }

    #[cold]
    fn leave_to_pinned(&self, pinned: impl Fn() -> bool) -> bool {
        let word = self.word();
        debug_assert!(
            word & WRITER != 0 && readers(word) == 0,
            "leaving a drop without holding the slot: {word:#x}"
        );
        // Nobody else writes a removed or taken word that no guard holds
        // (S3, S5), so a plain store. Release pairs with the Acquire of
        // whoever claims the drop: our accesses happen before it.
        let held = with_state(word & !(PARKED | RETAINED), REMOVING);
        let pending = (held & !WRITER) | DROP_PENDING;
        self.word.store(pending, Ordering::Release);
        if pinned() {
            return true;
        }
        // The readers left before our second look: claim the drop back,
        // unless one of them saw the pending word and claimed it first.
        self.word
            .compare_exchange(pending, held, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
    }

    /// For a reader that just unpinned (pins.rs, P3): if the slot's value
    /// waits for its pinned readers to be dropped and `pinned` says none is
    /// left, claims the drop and returns the value's generation: the caller
    /// now holds the slot for reclaiming.
    ///
    /// Whatever the generation: records name slots, not values, so the
    /// reader may have held up the drop of a newer value than the one its
    /// key named (a pin that found the key stale).
    #[inline]
    pub(super) fn claim_pending(&self, pinned: impl Fn() -> bool) -> Option<u32> {
        // Acquire pairs with `leave_to_pinned`'s Release store: the records
        // we look at next are at least as new as those it saw (P4).
        let word = self.word.load(Ordering::Acquire);
        if drop_pending(word) {
            self.claim_pending_from(word, pinned)
        } else {
            None
        }
    }

    #[cold]
    fn claim_pending_from(&self, word: u64, pinned: impl Fn() -> bool) -> Option<u32> {
        // Held for reclaiming: `WRITER`, and no more `DROP_PENDING`.
        let held = (word & !DROP_PENDING) | WRITER;
        (!pinned()
            && self
                .word
                .compare_exchange(word, held, Ordering::Acquire, Ordering::Relaxed)
                .is_ok())
        .then_some(generation(word))
    }

    /// Marks the value `token` names as retained (it has queue shares).
    /// Returns whether this call set the mark.
    pub(super) fn retain(&self, token: MessageToken) -> Result<bool, MemoryError> {
        let mut word = self.word();
        loop {
            check(word, token)?;
            if word & POISONED != 0 {
                return Err(MemoryError::Poisoned);
            }
            if word & RETAINED != 0 {
                return Ok(false);
            }
            // Relaxed: the mark orders nothing but itself.
            match self.word.compare_exchange_weak(
                word,
                word | RETAINED,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(true),
                Err(now) => word = now,
            }
        }
    }

    /// Moves the value out of a slot the caller holds exclusively for
    /// reclaiming (after `remove`, `begin_take` or a last unlock answered
    /// `generation`), and marks the slot vacant with the next generation.
    /// The caller pushes the index onto a free list next.
    ///
    /// # Safety
    ///
    /// - The caller holds the slot exclusively for reclaiming: one of the
    ///   calls above returned `generation` to it, and it has not called
    ///   `vacate` or `vacate_dropping` since.
    #[inline]
    pub(super) unsafe fn vacate(&self, generation: u32) -> T {
        self.debug_assert_reclaiming();
        // SAFETY: the caller holds the slot exclusively (S2) and the value
        // is initialised (S1: the state is not vacant); after this read the
        // word says vacant, so nobody reads the moved-out value again.
        let value = self.value.with(|cell| unsafe { cell.cast::<T>().read() });
        self.mark_vacant(generation);
        value
    }

    /// [`vacate`](Self::vacate), dropping the value in place instead of
    /// moving it out, then calling `recycle` with the word the slot takes:
    /// a retired word, stored, or a vacant one, which is not: the slot
    /// keeps its held word until `recycle` pushes it, and the push's
    /// [`link_vacant`](Self::link_vacant) stores it with its link, one
    /// store instead of two. A token of the value gets `NotAllocated`
    /// from either word. If the value's `Drop` panics, the slot is still
    /// recycled while unwinding.
    ///
    /// # Safety
    ///
    /// As for [`vacate`](Self::vacate).
    #[inline]
    pub(super) unsafe fn vacate_dropping(&self, generation: u32, recycle: impl FnOnce(u64)) {
        self.debug_assert_reclaiming();
        /// Frees the slot when dropped, after the value's drop (or during
        /// its unwinding).
        struct Release<'a, T, F: FnOnce(u64)> {
            slot: &'a Slot<T>,
            generation: u32,
            recycle: Option<F>,
        }
        impl<T, F: FnOnce(u64)> Drop for Release<'_, T, F> {
            #[inline]
            fn drop(&mut self) {
                let vacant = self.slot.vacant_after(self.generation);
                if let Some(recycle) = self.recycle.take() {
                    recycle(vacant);
                }
            }
        }
        let _release = Release {
            slot: self,
            generation,
            recycle: Some(recycle),
        };
        // SAFETY: the caller holds the slot exclusively (S2) and the value
        // is initialised (S1). The held word stays until `_release` hands
        // the slot to `recycle`, whose push writes the vacant word: no lock
        // or pin is granted on a held word, so nobody reaches the dropped
        // value again.
        self.value
            .with_mut(|cell| unsafe { core::ptr::drop_in_place(cell.cast::<T>()) });
    }

    /// Moves the value out of a slot, whatever state its word is in, and
    /// marks the slot vacant with the next generation (or retired, S4);
    /// returns the word it had, or `None` if it was vacant. The caller
    /// pushes the index onto a free list next (`Recycle::recycle`).
    ///
    /// # Safety
    ///
    /// - The caller has exclusive access to the whole arena (a `&mut` to
    ///   its only handle): no guard is live and no other thread can touch
    ///   the slot. A guard that was `mem::forget`ed may have left reader
    ///   or writer bits behind; its borrow is over, so they guard nothing.
    pub(super) unsafe fn evict(&self) -> Option<(u64, T)> {
        let word = self.word();
        if state(word) == VACANT {
            return None;
        }
        // SAFETY: exclusive access (the caller's contract) and an
        // initialised value (S1: the state is not vacant); the word says
        // vacant right after, so nobody reads the moved-out value again.
        let value = self.value.with(|cell| unsafe { cell.cast::<T>().read() });
        self.mark_vacant(generation(word));
        Some((word, value))
    }

    /// Gives back a vacant slot the caller popped and will not fill: its
    /// generation moves on (or it retires, S4), so the key of the value it
    /// was reserved for (a vacant entry's) never names a later value. The
    /// caller recycles the slot next.
    pub(super) fn abandon(&self) {
        let word = self.word();
        debug_assert_eq!(state(word), VACANT, "abandoning a slot in use: {word:#x}");
        // Mutation `abandon_keeps_generation`: the slot goes back with the
        // generation its reserved key carries.
        if !cfg!(slotarena_mutation = "abandon_keeps_generation") {
            self.mark_vacant(generation(word));
        }
    }

    fn debug_assert_reclaiming(&self) {
        debug_assert!(
            self.word() & WRITER != 0 && matches!(state(self.word()), REMOVING | TAKING),
            "vacating a slot not held for reclaiming: {:#x}",
            self.word()
        );
    }

    /// [`mark_vacant`](Self::mark_vacant)'s word, stored only if the slot
    /// retires (see `vacate_dropping`).
    #[inline]
    fn vacant_after(&self, generation: u32) -> u64 {
        match generation.checked_add(1) {
            Some(next) => word::vacant(next, word::NIL),
            None => self.mark_vacant(generation),
        }
    }

    /// The word of a slot whose value left: vacant, next generation, or
    /// retired if `generation` was the last (S4). Returns the word.
    #[inline]
    fn mark_vacant(&self, generation: u32) -> u64 {
        let word = match generation.checked_add(1) {
            Some(next) => word::vacant(next, word::NIL),
            None => RETIRED_WORD,
        };
        // Relaxed: the slot is owned (S3); the free list's push publishes,
        // and a retired word is never read for anything but itself.
        self.word.store(word, Ordering::Relaxed);
        word
    }

    /// Whether the slot is retired (S4). Meaningful to the owner of a
    /// vacant slot, which `Recycle::recycle` is.
    #[inline]
    pub(super) fn is_retired(&self) -> bool {
        self.word() == RETIRED_WORD
    }

    /// Drops the value of a slot that is not vacant, for the arena's drop.
    pub(super) fn drop_in_place(&mut self) {
        if state(self.word()) != VACANT {
            // SAFETY: `&mut self` excludes every guard, and the value is
            // initialised (S1).
            self.value
                .with_mut(|cell| unsafe { core::ptr::drop_in_place(cell.cast::<T>()) });
        }
    }
}
