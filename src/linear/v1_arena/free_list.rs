//! A lock-free, ABA-safe stack of slot indices (a Treiber stack).
//!
//! The head is one `AtomicU64` packing a 32-bit tag above a 32-bit index.
//! Every successful compare-and-swap bumps the tag, so a head that was popped
//! and pushed back in between (the ABA case) no longer compares equal and a
//! pop that read a stale `next` link retries instead of corrupting the list.
//! The links live beside the slots (`next_free`), so the stack allocates
//! nothing: the caller passes `links`, which maps an index to its link.

use crate::sync::{AtomicU32, AtomicU64, CachePadded, Ordering};

/// End-of-list marker in links and in the head.
pub const NIL: u32 = u32::MAX;

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
    /// `links(i)` must return the link of index `i` for every index that
    /// was ever pushed; a stale link read here is harmless because the tag
    /// makes the following compare-and-swap fail.
    #[inline]
    pub fn pop<'a>(&self, links: impl Fn(u32) -> &'a AtomicU32) -> Option<u32> {
        // Acquire pairs with the Release of the push that put this head
        // there, so the link written before that push is visible.
        let mut head = self.head.load(Ordering::Acquire);
        loop {
            let (tag, index) = unpack(head);
            if index == NIL {
                return None;
            }
            // Relaxed: ordered after the Acquire load of `head` above.
            let next = links(index).load(Ordering::Relaxed);
            // Acquire on success: the popper now owns the slot and must see
            // everything its last freer did before pushing it (Release).
            match self.head.compare_exchange_weak(
                head,
                pack(tag.wrapping_add(1), next),
                Ordering::Acquire,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(index),
                Err(current) => head = current,
            }
        }
    }

    /// Empties the list in one step and returns the first index of the
    /// chain it held (follow the links to the end, `NIL`), or `None` when
    /// it was empty. The caller owns every slot of the chain afterwards.
    pub fn take_all(&self) -> Option<u32> {
        // Acquire, as in `pop`: the chain's links and slots become visible.
        let mut head = self.head.load(Ordering::Acquire);
        loop {
            let (tag, index) = unpack(head);
            if index == NIL {
                return None;
            }
            // The tag bump makes any pop that read this head before us fail.
            match self.head.compare_exchange_weak(
                head,
                pack(tag.wrapping_add(1), NIL),
                Ordering::Acquire,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(index),
                Err(current) => head = current,
            }
        }
    }

    /// The raw head word: equal snapshots mean no operation happened in
    /// between (every successful operation bumps the tag).
    pub fn snapshot(&self) -> u64 {
        // Acquire, like every other head load: a snapshot that shows an
        // index may be followed by a pop of it.
        self.head.load(Ordering::Acquire)
    }

    /// Whether a [`snapshot`](Self::snapshot) shows an empty list.
    pub fn is_empty_snapshot(snapshot: u64) -> bool {
        unpack(snapshot).1 == NIL
    }

    /// Pushes one index whose slot the caller owns.
    #[inline]
    pub fn push<'a>(&self, index: u32, links: impl Fn(u32) -> &'a AtomicU32) {
        self.push_chain(index, index, links);
    }

    /// Pushes a chain `first → … → last` that the caller has already linked
    /// and owns entirely; `last`'s link is overwritten.
    pub fn push_chain<'a>(&self, first: u32, last: u32, links: impl Fn(u32) -> &'a AtomicU32) {
        debug_assert!(first != NIL && last != NIL, "pushing the NIL index");
        // Relaxed: the compare-and-swap is only a guess until it succeeds.
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            let (tag, top) = unpack(head);
            // Relaxed: published by the Release compare-and-swap below.
            links(last).store(top, Ordering::Relaxed);
            // Release pairs with `pop`'s Acquire: the link, and whatever the
            // caller did to the slot before freeing it, become visible to
            // the next owner.
            match self.head.compare_exchange_weak(
                head,
                pack(tag.wrapping_add(1), first),
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(current) => head = current,
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    proptest! {
        #[test]
        fn head_packing_round_trips(tag in any::<u32>(), index in any::<u32>()) {
            prop_assert_eq!(unpack(pack(tag, index)), (tag, index));
        }
    }

    #[test]
    fn pops_in_lifo_order_and_chains_keep_their_order() {
        let links: Vec<AtomicU32> = (0..4).map(|_| AtomicU32::new(NIL)).collect();
        let link = |i: u32| &links[i as usize];
        let list = FreeList::new();
        assert_eq!(list.pop(link), None);
        links[1].store(2, Ordering::Relaxed);
        list.push_chain(1, 2, link);
        list.push(0, link);
        assert_eq!(list.pop(link), Some(0));
        assert_eq!(list.pop(link), Some(1));
        list.push(3, link);
        assert_eq!(list.pop(link), Some(3));
        assert_eq!(list.pop(link), Some(2));
        assert_eq!(list.pop(link), None);
        assert!(FreeList::is_empty_snapshot(list.snapshot()));
        list.push(1, link);
        list.push(0, link);
        let before = list.snapshot();
        assert_eq!(list.take_all(), Some(0));
        assert_eq!(
            links[0].load(Ordering::Relaxed),
            1,
            "the chain stays linked"
        );
        assert_ne!(list.snapshot(), before);
        assert_eq!(list.take_all(), None);
    }
}
