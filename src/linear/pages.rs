//! Page bookkeeping: which pages are free, and what each page belongs to.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;

use crate::sync::{AtomicU64, Ordering};

/// Free pages as runs `start → length`, plus the current and maximum size.
/// Kept behind a mutex: only growth of a size class and large allocations
/// (at least 32 KiB each) come here, never the small-block path.
#[derive(Debug)]
pub(super) struct PagePool {
    size: u32,
    max: u32,
    free: BTreeMap<u32, u32>,
}

impl PagePool {
    /// An empty pool (size 0) that may grow to `max` pages.
    pub(super) fn new(max: u32) -> PagePool {
        PagePool {
            size: 0,
            max,
            free: BTreeMap::new(),
        }
    }

    pub(super) fn size(&self) -> u32 {
        self.size
    }

    /// WASM `memory.grow`: adds `delta` free pages at the end and returns
    /// the old size, or `None` past the maximum (nothing changes).
    pub(super) fn grow(&mut self, delta: u32) -> Option<u32> {
        let old = self.size;
        let new = old.checked_add(delta).filter(|&new| new <= self.max)?;
        if delta > 0 {
            self.size = new;
            self.give_back(old, delta);
        }
        Some(old)
    }

    /// Takes `pages` contiguous free pages (first fit), growing the memory
    /// if no run fits. Page 0 is only handed out when `allow_page_zero`, so
    /// a large block can never start at offset 0.
    pub(super) fn take(&mut self, pages: u32, allow_page_zero: bool) -> Option<u32> {
        if let Some(start) = self.first_fit(pages, allow_page_zero) {
            return Some(start);
        }
        // Grow just enough: the usable part of a free run touching the end
        // counts toward it.
        let tail = self
            .free
            .iter()
            .next_back()
            .filter(|&(&start, &len)| start + len == self.size)
            .map_or(0, |(&start, &len)| {
                len - u32::from(start == 0 && !allow_page_zero)
            });
        // A run grown from an empty memory starts at page 0, which a large
        // block must skip.
        let skip_page_zero = u32::from(self.size == 0 && !allow_page_zero);
        self.grow((pages - tail).checked_add(skip_page_zero)?)?;
        self.first_fit(pages, allow_page_zero)
    }

    fn first_fit(&mut self, pages: u32, allow_page_zero: bool) -> Option<u32> {
        let (run_start, run_len, start) = self.free.iter().find_map(|(&run_start, &run_len)| {
            let skip = u32::from(run_start == 0 && !allow_page_zero);
            (run_len - skip >= pages).then_some((run_start, run_len, run_start + skip))
        })?;
        self.free.remove(&run_start);
        if start > run_start {
            self.free.insert(run_start, start - run_start);
        }
        let end = start + pages;
        if end < run_start + run_len {
            self.free.insert(end, run_start + run_len - end);
        }
        Some(start)
    }

    /// Returns a run of pages, merging it with free neighbours.
    pub(super) fn give_back(&mut self, mut start: u32, mut pages: u32) {
        if let Some((&before, &len)) = self.free.range(..start).next_back()
            && before + len == start
        {
            self.free.remove(&before);
            start = before;
            pages += len;
        }
        if let Some(len) = self.free.remove(&(start + pages)) {
            pages += len;
        }
        self.free.insert(start, pages);
    }
}

/// What a page belongs to, packed in one `u64` of the page table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PageOwner {
    /// Never handed out.
    Unassigned,
    /// Segment `segment` of size class `class`.
    Class { class: u8, segment: u32 },
    /// Part of the large block whose record is at `record` in the large
    /// arena (the record may since have been freed; tokens tell).
    Large { record: u32 },
}

const KIND_SHIFT: u32 = 62;
const KIND_CLASS: u64 = 1;
const KIND_LARGE: u64 = 2;

impl PageOwner {
    fn pack(self) -> u64 {
        match self {
            PageOwner::Unassigned => 0,
            PageOwner::Class { class, segment } => {
                (KIND_CLASS << KIND_SHIFT) | ((class as u64) << 32) | segment as u64
            }
            PageOwner::Large { record } => (KIND_LARGE << KIND_SHIFT) | record as u64,
        }
    }

    fn unpack(word: u64) -> PageOwner {
        match word >> KIND_SHIFT {
            KIND_CLASS => PageOwner::Class {
                class: (word >> 32) as u8,
                segment: word as u32,
            },
            KIND_LARGE => PageOwner::Large {
                record: word as u32,
            },
            _ => PageOwner::Unassigned,
        }
    }
}

/// One owner word per page of the maximum size. Written when a page is
/// handed out (before the page's blocks can be reached), read lock-free.
#[derive(Debug)]
pub(super) struct PageTable {
    owners: Box<[AtomicU64]>,
}

impl PageTable {
    pub(super) fn new(max_pages: u32) -> PageTable {
        PageTable {
            owners: (0..max_pages).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    pub(super) fn set(&self, page: u32, owner: PageOwner) {
        // Release pairs with `get`'s Acquire: whoever finds this owner also
        // sees the segment or record it names.
        self.owners[page as usize].store(owner.pack(), Ordering::Release);
    }

    pub(super) fn get(&self, page: u32) -> PageOwner {
        self.owners
            .get(page as usize)
            // Acquire pairs with `set`'s Release.
            .map_or(PageOwner::Unassigned, |word| {
                PageOwner::unpack(word.load(Ordering::Acquire))
            })
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn owners_round_trip() {
        for owner in [
            PageOwner::Unassigned,
            PageOwner::Class {
                class: 12,
                segment: 65_535,
            },
            PageOwner::Large {
                record: u32::MAX - 1,
            },
        ] {
            assert_eq!(PageOwner::unpack(owner.pack()), owner);
        }
    }

    #[test]
    fn pool_takes_first_fit_grows_on_demand_and_merges() {
        let mut pool = PagePool::new(8);
        assert_eq!(pool.grow(2), Some(0));
        assert_eq!(
            pool.take(1, false),
            Some(1),
            "page 0 is kept from large blocks"
        );
        assert_eq!(pool.take(1, true), Some(0));
        assert_eq!(pool.take(3, false), Some(2), "grown by exactly three pages");
        assert_eq!(pool.size(), 5);
        pool.give_back(1, 1);
        pool.give_back(2, 3);
        assert_eq!(
            pool.take(4, false),
            Some(1),
            "merged neighbours form one run"
        );
        assert_eq!(pool.take(4, false), None, "5 + 4 > 8");
        let mut empty = PagePool::new(3);
        assert_eq!(
            empty.take(1, false),
            Some(1),
            "grows past page 0 for a large block"
        );
        assert_eq!(empty.size(), 2);
        assert_eq!(pool.size(), 5, "a refused take does not grow");
        assert_eq!(pool.grow(3), Some(5));
        assert_eq!(pool.grow(1), None);
    }
}
