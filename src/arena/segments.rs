//! The slot storage: a first segment allocated up front, further segments
//! allocated on demand, none ever moved or freed before the arena drops.
//!
//! Because segments only ever appear and never move, a `&Slot` stays valid
//! for the arena's whole life: guards and tokens survive growth, and no
//! reclamation scheme is needed. That is why the crate does not use
//! `crossbeam-epoch` here: epochs solve *freeing* memory that readers may
//! still see, and this arena never frees a segment while it is shared.

use alloc::boxed::Box;

use crate::sync::OnceLock;

/// How segments after the first are sized: segment `k` holds `base << k`
/// slots, so any maximum takes few segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Geometry {
    base: usize,
}

impl Geometry {
    /// `(segment, offset)` of an index past the first segment, given as
    /// `past_first = index - first_len`.
    #[inline]
    fn locate(self, past_first: usize) -> (usize, usize) {
        // Segment k starts at base * (2^k - 1) past the first. The base is
        // usually a power of two (32 for arenas that start empty): a shift
        // then replaces the division.
        let units = if self.base.is_power_of_two() {
            past_first >> self.base.trailing_zeros()
        } else {
            past_first / self.base
        };
        let k = (units + 1).ilog2() as usize;
        (k, past_first - self.base * ((1 << k) - 1))
    }

    /// Index of segment `k`'s first slot, counted past the first segment.
    fn segment_start(self, k: usize) -> usize {
        self.base.saturating_mul((1usize << k.min(63)) - 1)
    }

    /// Slot count of segment `k` (before clamping to the maximum).
    fn segment_len(self, k: usize) -> usize {
        self.base.checked_shl(k as u32).unwrap_or(usize::MAX)
    }
}

/// A run of slots that never moves once created.
type Segment<E> = Box<[E]>;

/// First segment plus lazily created later ones.
#[derive(Debug)]
pub(super) struct Segments<E> {
    first: Segment<E>,
    rest: Box<[OnceLock<Segment<E>>]>,
    geometry: Geometry,
    max: usize,
}

/// `len` fresh elements.
fn segment<E: Default>(len: usize) -> Segment<E> {
    (0..len).map(|_| E::default()).collect()
}

impl<E: Default> Segments<E> {
    /// `initial` slots now, room for segments up to `max` slots in all.
    /// Each growth adds a segment as large as everything before it (at
    /// least 32 slots), clamped to `max`.
    pub(super) fn new(initial: usize, max: usize) -> Segments<E> {
        let geometry = Geometry {
            base: initial.max(32),
        };
        let mut count = 0;
        let mut covered = initial;
        while covered < max {
            covered = covered.saturating_add(geometry.segment_len(count));
            count += 1;
        }
        Segments {
            first: segment(initial),
            rest: (0..count).map(|_| OnceLock::new()).collect(),
            geometry,
            max,
        }
    }

    /// Creates the segment that starts at index `start` (the number of
    /// indexes created so far) and returns its first index and length, or
    /// `None` at the maximum. The caller serialises calls (the arena's
    /// growth lock).
    pub(super) fn add(&self, start: usize) -> Option<(usize, usize)> {
        if start >= self.max {
            return None;
        }
        let k = self.segment_of(start)?;
        let (first, len) = self.range(k);
        debug_assert_eq!(first, start, "segment {k} must start at a boundary");
        self.rest[k].get_or_init(|| segment(len));
        Some((first, len))
    }
}

impl<E> Segments<E> {
    /// The slot at `index`, if its segment exists.
    #[inline]
    pub(super) fn get(&self, index: usize) -> Option<&E> {
        match self.first.get(index) {
            Some(slot) => Some(slot),
            None => self.get_later(index),
        }
    }

    /// Out of line: every access to a slot inlines `get`, and this part,
    /// inlined too, kept registers busy on the paths of the first segment
    /// (a fixed-size arena has no other). Cold, so that the first
    /// segment's path falls through with no jump around this call; a
    /// growable arena's later segments pay that jump instead.
    #[cold]
    #[inline(never)]
    fn get_later(&self, index: usize) -> Option<&E> {
        if index >= self.max {
            return None;
        }
        let (k, offset) = self.geometry.locate(index - self.first.len());
        self.rest.get(k)?.get()?.get(offset)
    }

    pub(super) fn max(&self) -> usize {
        self.max
    }

    /// The later segment holding `index`, or `None` in the first segment.
    fn segment_of(&self, index: usize) -> Option<usize> {
        let past_first = index.checked_sub(self.first.len())?;
        Some(self.geometry.locate(past_first).0)
    }

    /// First index and length of later segment `k`, clamped to the maximum.
    fn range(&self, k: usize) -> (usize, usize) {
        let start = self.first.len() + self.geometry.segment_start(k);
        (
            start,
            self.geometry
                .segment_len(k)
                .min(self.max.saturating_sub(start)),
        )
    }

    /// Every slot created so far, for the arena's drop.
    pub(super) fn all_mut(&mut self) -> impl Iterator<Item = &mut E> {
        self.first.iter_mut().chain(
            self.rest
                .iter_mut()
                .filter_map(OnceLock::get_mut)
                .flat_map(|s| s.iter_mut()),
        )
    }

    /// Every slot created so far.
    pub(super) fn all(&self) -> impl Iterator<Item = &E> {
        self.first.iter().chain(
            self.rest
                .iter()
                .filter_map(OnceLock::get)
                .flat_map(|s| s.iter()),
        )
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn doubling_segments_cover_every_index_once() {
        for base in 1..6 {
            let geometry = Geometry { base };
            let mut expected = Vec::new();
            for k in 0..6 {
                for offset in 0..geometry.segment_len(k) {
                    expected.push((k, offset));
                }
            }
            let located: Vec<_> = (0..expected.len()).map(|i| geometry.locate(i)).collect();
            assert_eq!(located, expected, "base {base}");
        }
    }

    #[test]
    fn growth_stops_exactly_at_the_maximum() {
        let segments = Segments::<u8>::new(3, 100);
        assert_eq!(segments.add(3), Some((3, 32)));
        assert_eq!(segments.add(35), Some((35, 64)));
        assert_eq!(segments.add(99), Some((99, 1)), "clamped to the maximum");
        assert_eq!(segments.add(100), None);
        assert_eq!(segments.all().count(), 100);
        assert!(segments.get(99).is_some() && segments.get(100).is_none());
    }
}
