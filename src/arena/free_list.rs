//! A lock-free, ABA-safe stack of slot indices (a Treiber stack).
//!
//! The head is one `AtomicU64` packing a 32-bit tag above a 32-bit index.
//! Every successful compare-and-swap bumps the tag, so a head that was popped
//! and pushed back in between (the ABA case) no longer compares equal and a
//! pop that read a stale `next` link retries instead of corrupting the list.
//! The links live in the slots themselves (a vacant slot's lifecycle word
//! carries its link), so the stack allocates nothing: the caller passes
//! [`Links`], which reads and writes the link of an index.

use crate::sync::{AtomicU64, CachePadded, Ordering};

pub use super::word::NIL;

/// Where the links of a list's indexes live.
///
/// `pub` only so that `__loom` can re-export it to the loom models; the
/// module itself is private.
pub trait Links {
    /// The link of `index`. Called on indexes that may have been popped by
    /// another thread meanwhile, so it must be an atomic read; a stale
    /// answer is harmless (the head's tag makes the following CAS fail).
    fn next(&self, index: u32) -> u32;
    /// Sets the link of `index`, which the caller owns (it is on no list).
    fn set_next(&self, index: u32, next: u32);
}

/// Packs the head: high 32 bits are the ABA tag, low 32 bits the top index.
#[inline]
const fn pack(tag: u32, index: u32) -> u64 {
    ((tag as u64) << 32) | index as u64
}

/// Splits a head into `(tag, index)`.
#[inline]
const fn unpack(head: u64) -> (u32, u32) {
    ((head >> 32) as u32, head as u32)
}

/// The ordering of `pop`'s loads of the head, Acquire (see `pop`).
// Mutation `free_list_pop_relaxed` (loom-mutations.sh): pop acquires nothing.
const POP_ORDER: Ordering = if cfg!(slotarena_mutation = "free_list_pop_relaxed") {
    Ordering::Relaxed
} else {
    Ordering::Acquire
};

/// The ordering of [`FreeList::pop_releasing`]'s compare-and-swap: `pop`'s,
/// and Release (under `free_list_pop_relaxed`, only the Release).
const POP_RELEASING_ORDER: Ordering = if cfg!(slotarena_mutation = "free_list_pop_relaxed") {
    Ordering::Release
} else {
    Ordering::AcqRel
};

/// The tag after a successful operation.
#[inline]
const fn bump(tag: u32) -> u32 {
    // Mutation `free_list_no_tag` (loom-mutations.sh): the ABA tag never moves.
    if cfg!(slotarena_mutation = "free_list_no_tag") {
        return tag;
    }
    tag.wrapping_add(1)
}

/// The stack's head; the links are owned by the caller's slots.
///
/// `pub` only so that `__loom` can re-export it to the loom models; the
/// module itself is private.
#[derive(Debug)]
pub struct FreeList {
    head: CachePadded<AtomicU64>,
}

impl Default for FreeList {
    fn default() -> Self {
        FreeList::new()
    }
}

impl FreeList {
    /// An empty list.
    pub fn new() -> FreeList {
        FreeList {
            head: CachePadded::new(AtomicU64::new(pack(0, NIL))),
        }
    }

    /// Pops the top index, or `None` when the list is empty.
    ///
    /// A stale link read here is harmless because the tag makes the
    /// following compare-and-swap fail.
    #[inline(always)]
    pub fn pop(&self, links: &impl Links) -> Option<u32> {
        self.pop_node(|index| ((), links.next(index)))
            .map(|(index, ())| index)
    }

    /// [`pop`](Self::pop) for a caller that finds an index's link through
    /// a node of its own: `node(index)` answers the node (say, a reference
    /// to the slot) and the link, and the popped index comes back with its
    /// node, so the caller does not look it up again. The last call is for
    /// the index popped.
    ///
    /// Always inlined: a store tries up to three lists (its shard's two,
    /// then a victim's cold one), and an empty list costs one load inline
    /// but a call out of line.
    #[inline(always)]
    pub(crate) fn pop_node<N>(&self, node: impl Fn(u32) -> (N, u32)) -> Option<(u32, N)> {
        // Acquire pairs with the Release of the push that put this head
        // there, so the link written before that push is visible.
        let mut head = self.head.load(POP_ORDER);
        loop {
            match self.pop_from(head, &node, POP_ORDER) {
                Ok(popped) => return popped,
                Err(current) => head = current,
            }
        }
    }

    /// [`pop`](Self::pop) that also releases: a thread whose
    /// compare-and-swap on this list the pop beats sees what the caller
    /// did before popping (a pop acquires on failure, a pusher that met
    /// someone fences). A thief pops a
    /// shard's hot list so, after flipping the shard's lists, so that the
    /// shard's own thread that it beats sees the flip.
    pub fn pop_releasing(&self, links: &impl Links) -> Option<u32> {
        // Acquire, as in `pop_node`.
        let mut head = self.head.load(POP_ORDER);
        loop {
            match self.pop_from(head, |index| ((), links.next(index)), POP_RELEASING_ORDER) {
                Ok(popped) => return popped.map(|(index, ())| index),
                Err(current) => head = current,
            }
        }
    }

    /// One attempt of [`pop_node`](Self::pop_node): `Ok(None)` when the
    /// list is empty, `Err` when the compare-and-swap failed: then the list
    /// may still hold indexes. The error says whether the try met another
    /// thread (the head had moved) rather than failing spuriously. A
    /// store's fast path: no retry loop keeps registers busy.
    #[inline(always)]
    pub(crate) fn try_pop_node<N>(
        &self,
        node: impl Fn(u32) -> (N, u32),
    ) -> Result<Option<(u32, N)>, bool> {
        // Acquire, as in `pop_node`.
        let head = self.head.load(POP_ORDER);
        self.pop_from(head, node, POP_ORDER)
            .map_err(|current| current != head)
    }

    /// Pops the top of `head`, the head as last loaded (with `POP_ORDER`):
    /// `Ok(None)` if it is empty, `Err` with the head found if the
    /// compare-and-swap failed. `success` orders a compare-and-swap that
    /// succeeds (at least Acquire); one that fails acquires.
    #[inline(always)]
    fn pop_from<N>(
        &self,
        head: u64,
        node: impl Fn(u32) -> (N, u32),
        success: Ordering,
    ) -> Result<Option<(u32, N)>, u64> {
        let (tag, index) = unpack(head);
        if index == NIL {
            return Ok(None);
        }
        // The link read is ordered after the Acquire load of `head`.
        let (found, next) = node(index);
        // Mutation `free_list_pop_load_store`: pop by a plain store, not a CAS.
        if cfg!(slotarena_mutation = "free_list_pop_load_store") {
            self.head.store(pack(bump(tag), next), Ordering::Release);
            return Ok(Some((index, found)));
        }
        // Acquire on success: the popper now owns the slot and must see
        // everything its last freer did before pushing it (Release).
        // Acquire on failure: a thread that lost to another's pop sees
        // what that thread did before (see `pop_releasing`).
        self.head
            .compare_exchange_weak(head, pack(bump(tag), next), success, POP_ORDER)
            .map(|_| Some((index, found)))
    }

    /// Pops the top index like [`pop`](Self::pop), but writes the head even
    /// when the list is empty (bumping the tag), so the caller's earlier
    /// writes are ordered before any later push (Release) and it sees every
    /// earlier push (Acquire). A waiter calls it after registering, so a
    /// racing push either hands it the index or sees the registration.
    pub fn pop_or_touch(&self, links: &impl Links) -> Option<u32> {
        let mut head = self.head.load(Ordering::Acquire);
        loop {
            let (tag, index) = unpack(head);
            let next = if index == NIL { NIL } else { links.next(index) };
            match self.head.compare_exchange_weak(
                head,
                pack(bump(tag), next),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return (index != NIL).then_some(index),
                Err(current) => head = current,
            }
        }
    }

    /// Whether the list looked empty (a hint: it may change at once).
    pub fn looks_empty(&self) -> bool {
        // Relaxed: a hint; a pop that follows reads the head again.
        unpack(self.head.load(Ordering::Relaxed)).1 == NIL
    }

    /// The raw head word, as this thread last saw it or newer: equal
    /// snapshots mean no operation happened in between (every successful
    /// operation bumps the tag).
    pub fn snapshot(&self) -> u64 {
        // Acquire, like every other head load: a snapshot that shows an
        // index may be followed by a pop of it.
        self.head.load(Ordering::Acquire)
    }

    /// The newest head word: a read-modify-write that writes the word
    /// back unchanged, where a load ([`snapshot`](Self::snapshot)) may
    /// read an older word this thread saw before. A look that ends in
    /// "full" confirms its scan with these: a head that still holds the
    /// word seen before the scan held it all along, up to now, so the
    /// scan saw the list as it was. Confirmed by loads, a look could miss
    /// a push another thread finished earlier (loom found a store refused
    /// while the slot its neighbour had freed sat on a list).
    pub fn newest(&self) -> u64 {
        // Mutation `free_list_snapshot_load`: confirmed by a plain load.
        if cfg!(slotarena_mutation = "free_list_snapshot_load") {
            return self.head.load(Ordering::Acquire);
        }
        // Acquire, as `snapshot`.
        self.head.fetch_add(0, Ordering::Acquire)
    }

    /// Forgets every index on the list, for a caller that holds the
    /// arena exclusively (nothing pops or pushes meanwhile) and lists its
    /// free slots again. The tag moves on, as for any change.
    pub fn empty_exclusive(&self) {
        let (tag, _) = unpack(self.head.load(Ordering::Relaxed));
        self.head.store(pack(bump(tag), NIL), Ordering::Relaxed);
    }

    /// Pushes one index whose slot the caller owns.
    #[inline]
    pub fn push(&self, index: u32, links: &impl Links) {
        self.push_with(index, |top| links.set_next(index, top));
    }

    /// [`push`](Self::push) for a caller that holds the slot itself:
    /// `set_next(top)` writes the index's link. Answers whether the push
    /// met another thread on the head (a compare-and-swap failed because
    /// the head had moved), which the pool reads as contention.
    ///
    /// Written out and inlined (not a chain of one, out of line), because
    /// every free pushes one index: the call, and looking the slot up again
    /// by its index, cost as much as the push.
    #[inline]
    pub fn push_with(&self, index: u32, set_next: impl Fn(u32)) -> bool {
        debug_assert!(index != NIL, "pushing the NIL index");
        // Relaxed: the compare-and-swap is only a guess until it succeeds.
        let mut head = self.head.load(Ordering::Relaxed);
        let mut met = false;
        loop {
            let (tag, top) = unpack(head);
            // Published by the Release compare-and-swap below.
            set_next(top);
            // Release pairs with `pop`'s Acquire: the link, and whatever the
            // caller did to the slot before freeing it, become visible to
            // the next owner. Acquire pairs with `pop_or_touch`'s Release,
            // so a pusher that follows a waiter's touch sees the waiter
            // registered (see `arena/waiting.rs`).
            match self.head.compare_exchange_weak(
                head,
                pack(bump(tag), index),
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return met,
                Err(current) => {
                    // An unchanged head is a spurious failure, not a meeting.
                    met |= current != head;
                    head = current;
                }
            }
        }
    }

    /// Pushes a chain `first → … → last` that the caller has already linked
    /// and owns entirely; `last`'s link is overwritten.
    pub fn push_chain(&self, first: u32, last: u32, links: &impl Links) {
        debug_assert!(last != NIL, "pushing the NIL index");
        self.push_with(first, |top| links.set_next(last, top));
    }
}

#[cfg(all(test, not(loom)))]
pub(super) mod tests {
    use super::*;
    use crate::sync::AtomicU32;
    use proptest::prelude::*;
    use std::vec::Vec;

    /// Links in a plain vector, for the unit tests of the lists.
    pub(in crate::arena) struct VecLinks(pub(in crate::arena) Vec<AtomicU32>);

    impl Links for VecLinks {
        fn next(&self, index: u32) -> u32 {
            self.0[index as usize].load(Ordering::Relaxed)
        }
        fn set_next(&self, index: u32, next: u32) {
            self.0[index as usize].store(next, Ordering::Relaxed);
        }
    }

    proptest! {
        #[test]
        fn head_packing_round_trips(tag in any::<u32>(), index in any::<u32>()) {
            prop_assert_eq!(unpack(pack(tag, index)), (tag, index));
        }
    }

    #[test]
    fn pops_in_lifo_order_and_chains_keep_their_order() {
        let links = VecLinks((0..4).map(|_| AtomicU32::new(NIL)).collect());
        let list = FreeList::new();
        assert_eq!(list.pop(&links), None);
        links.set_next(1, 2);
        list.push_chain(1, 2, &links);
        list.push(0, &links);
        assert_eq!(list.pop(&links), Some(0));
        assert_eq!(list.pop(&links), Some(1));
        list.push(3, &links);
        assert_eq!(list.pop(&links), Some(3));
        assert_eq!(list.pop(&links), Some(2));
        assert_eq!(list.pop(&links), None);
        let before = list.snapshot();
        list.push(1, &links);
        assert_ne!(list.snapshot(), before, "every push moves the tag");
    }

    #[test]
    fn a_push_or_pop_that_finds_the_head_moved_says_it_met_another_thread() {
        let links = VecLinks((0..4).map(|_| AtomicU32::new(NIL)).collect());
        let list = FreeList::new();
        assert!(!list.push_with(0, |top| links.set_next(0, top)), "alone");
        // Another push lands between this push's read of the head and its
        // compare-and-swap.
        let met = list.push_with(1, |top| {
            if top == 0 {
                list.push(2, &links);
            }
            links.set_next(1, top);
        });
        assert!(met);
        // Alone, a try fails only spuriously (a weak compare-and-swap, as
        // Miri's often does), which is no meeting.
        let alone = loop {
            match list.try_pop_node(|index| ((), links.next(index))) {
                Err(false) => continue,
                other => break other,
            }
        };
        assert_eq!(alone, Ok(Some((1, ()))));
        let raced = list.try_pop_node(|index| {
            if index == 2 {
                list.push(3, &links);
            }
            ((), links.next(index))
        });
        assert_eq!(raced, Err(true));
        let order: Vec<u32> = core::iter::from_fn(|| list.pop(&links)).collect();
        assert_eq!(order, [3, 2, 0], "nothing lost");
    }
}
