//! The slot storage: a first segment allocated up front, further segments
//! allocated on demand, none ever moved or freed before the arena drops.
//!
//! Because segments only ever appear and never move, a `&Slot` stays valid
//! for the arena's whole life: guards and tokens survive growth, and no
//! reclamation scheme is needed. That is why the crate does not use
//! `crossbeam-epoch` here: epochs solve *freeing* memory that readers may
//! still see, and this arena never frees a segment while it is shared.

use alloc::boxed::Box;

use super::slot::Slot;
use crate::sync::OnceLock;

/// How segments after the first are sized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Geometry {
    /// Segment `k` holds `base << k` slots: few segments for any maximum.
    Doubling { base: usize },
    /// Every segment holds `len` slots (the linear memory: one page each).
    Fixed { len: usize },
}

impl Geometry {
    /// `(segment, offset)` of an index past the first segment, given as
    /// `past_first = index - first_len`.
    #[inline]
    fn locate(self, past_first: usize) -> (usize, usize) {
        match self {
            Geometry::Doubling { base } => {
                // Segment k starts at base * (2^k - 1) past the first.
                let k = (past_first / base + 1).ilog2() as usize;
                (k, past_first - base * ((1 << k) - 1))
            }
            Geometry::Fixed { len } => (past_first / len, past_first % len),
        }
    }

    /// Index of segment `k`'s first slot, counted past the first segment.
    fn segment_start(self, k: usize) -> usize {
        match self {
            Geometry::Doubling { base } => base.saturating_mul((1usize << k.min(63)) - 1),
            Geometry::Fixed { len } => len.saturating_mul(k),
        }
    }

    /// Slot count of segment `k` (before clamping to the maximum).
    fn segment_len(self, k: usize) -> usize {
        match self {
            Geometry::Doubling { base } => base.checked_shl(k as u32).unwrap_or(usize::MAX),
            Geometry::Fixed { len } => len,
        }
    }
}

/// A run of slots that never moves once created.
type Segment<T> = Box<[Slot<T>]>;

/// First segment plus lazily created later ones.
#[derive(Debug)]
pub(super) struct Segments<T> {
    first: Segment<T>,
    rest: Box<[OnceLock<Segment<T>>]>,
    geometry: Geometry,
    max: usize,
}

impl<T> Segments<T> {
    /// `initial` slots now, room for segments up to `max` slots in all.
    pub(super) fn new(initial: usize, max: usize, geometry: Geometry) -> Segments<T> {
        let mut count = 0;
        let mut covered = initial;
        while covered < max {
            covered = covered.saturating_add(geometry.segment_len(count));
            count += 1;
        }
        Segments {
            first: Slot::chain(0, initial),
            rest: (0..count).map(|_| OnceLock::new()).collect(),
            geometry,
            max,
        }
    }

    /// The slot at `index`, if its segment exists.
    #[inline]
    pub(super) fn get(&self, index: usize) -> Option<&Slot<T>> {
        match self.first.get(index) {
            Some(slot) => Some(slot),
            None => self.get_later(index),
        }
    }

    #[cold]
    fn get_later(&self, index: usize) -> Option<&Slot<T>> {
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
    pub(super) fn segment_of(&self, index: usize) -> Option<usize> {
        let past_first = index.checked_sub(self.first.len())?;
        Some(self.geometry.locate(past_first).0)
    }

    /// First index and length of later segment `k`, clamped to the maximum.
    pub(super) fn range(&self, k: usize) -> (usize, usize) {
        let start = self.first.len() + self.geometry.segment_start(k);
        (
            start,
            self.geometry
                .segment_len(k)
                .min(self.max.saturating_sub(start)),
        )
    }

    /// Creates the segment that starts at index `start` (the number of
    /// indexes created so far) and returns its number, or `None` at the
    /// maximum. The caller serialises calls (the arena's growth lock).
    pub(super) fn add(&self, start: usize) -> Option<usize> {
        if start >= self.max {
            return None;
        }
        let k = self.segment_of(start)?;
        let (first, len) = self.range(k);
        debug_assert_eq!(first, start, "segment {k} must start at a boundary");
        self.rest[k].get_or_init(|| Slot::chain(start, len));
        Some(k)
    }

    /// Every slot created so far.
    pub(super) fn all(&self) -> impl Iterator<Item = &Slot<T>> {
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
            let geometry = Geometry::Doubling { base };
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
        let segments = Segments::<u8>::new(3, 10, Geometry::Doubling { base: 3 });
        assert_eq!(segments.add(3), Some(0));
        assert_eq!(segments.range(0), (3, 3));
        assert_eq!(segments.add(6), Some(1));
        assert_eq!(segments.range(1), (6, 4), "clamped to the maximum");
        assert_eq!(segments.add(10), None);
        assert_eq!(
            (segments.segment_of(2), segments.segment_of(7)),
            (None, Some(1))
        );
        assert_eq!(segments.all().count(), 10);
        assert!(segments.get(9).is_some() && segments.get(10).is_none());
    }
}
