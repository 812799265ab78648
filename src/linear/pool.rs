//! The pool of free granules: best fit with coalescing, growth of the
//! memory, and the bookkeeping that hands wholly free pages back to the OS.
//!
//! One pool per memory, behind a mutex: it serves spans of the size
//! classes and large blocks, the cold path. All sizes are in granules
//! (`classes::GRANULE` bytes) and fit `u32` for any memory up to 4 GiB.
//!
//! Invariants:
//! - P1: free runs never overlap, never touch (neighbours are merged), and
//!   lie below the size; granule 0 is never free (offset 0 is never handed
//!   out).
//! - P2: `by_start` and `by_size` hold the same runs.
//! - P3: `free_in_page[p]` is the number of free granules in page `p`.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

use super::PAGE_SIZE;
use super::classes::GRANULE;

/// Granules per 64 KiB page.
pub(super) const PAGE_GRANULES: u32 = PAGE_SIZE / GRANULE;

/// Wholly free pages that stay committed before the pool hands them back
/// to the OS in one batch: 32 pages, 2 MiB. Freeing and reusing memory
/// below this costs no system call and no page fault.
const DIRTY_LIMIT: usize = 32;

/// What a page's bytes are, as far as the OS goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backing {
    /// Never handed out since the memory grew over it, or handed back to
    /// the OS since: reads as zero, costs no memory.
    Clean,
    /// May hold bytes a block wrote (committed by the OS).
    Dirty,
}

/// The free granules of one memory (see the module docs).
#[derive(Debug)]
pub(super) struct Pool {
    /// Current size in pages.
    size: u32,
    max: u32,
    by_start: BTreeMap<u32, u32>,
    by_size: BTreeSet<(u32, u32)>,
    free_in_page: Vec<u32>,
    backing: Vec<Backing>,
    /// Wholly free dirty pages, each once (may hold pages since reused;
    /// `decommit_batch` drops those).
    dirty: Vec<u32>,
    /// Whether each page is on `dirty`.
    listed: Vec<bool>,
    /// Highest granule end ever handed out.
    high_water: u32,
}

/// A range of pages: `(first page, pages)`.
pub(super) type PageRun = (u32, u32);

/// Pages that [`Pool::give_back`] found wholly free and marked clean, for
/// the caller to hand back to the OS ([`Region::decommit_clean`]) before
/// anyone can take them again: the value borrows the pool, so the pool
/// cannot be touched (and its lock cannot be released) while it lives.
///
/// [`Region::decommit_clean`]: super::region::Region::decommit_clean
#[must_use = "the pages must be handed back to the OS"]
pub(super) struct CleanPages<'pool> {
    runs: Vec<PageRun>,
    _pool: core::marker::PhantomData<&'pool mut Pool>,
}

impl CleanPages<'_> {
    /// The runs, each wholly free in the pool (P3) and below its size.
    pub(super) fn runs(&self) -> &[PageRun] {
        &self.runs
    }
}

impl Pool {
    pub(super) fn new(max_pages: u32) -> Pool {
        Pool {
            size: 0,
            max: max_pages,
            by_start: BTreeMap::new(),
            by_size: BTreeSet::new(),
            free_in_page: Vec::new(),
            backing: Vec::new(),
            dirty: Vec::new(),
            listed: Vec::new(),
            high_water: 0,
        }
    }

    pub(super) fn size(&self) -> u32 {
        self.size
    }

    pub(super) fn high_water(&self) -> u32 {
        self.high_water
    }

    /// Grows by `delta` pages (their granules become free) and returns the
    /// old size; `None` past the maximum.
    pub(super) fn grow(&mut self, delta: u32) -> Option<u32> {
        let old = self.size;
        let new = old.checked_add(delta).filter(|&new| new <= self.max)?;
        if delta == 0 {
            return Some(old);
        }
        self.size = new;
        self.free_in_page.resize(new as usize, 0);
        self.backing.resize(new as usize, Backing::Clean);
        self.listed.resize(new as usize, false);
        // Granule 0 is never free (P1).
        let start = (old * PAGE_GRANULES).max(1);
        self.merge_free(start, new * PAGE_GRANULES - start);
        Some(old)
    }

    /// Takes `granules` granules whose start is a multiple of `align`
    /// granules (a power of two), best fit: the smallest run that holds
    /// them, the lowest such run among equals. `None` if no run holds them
    /// (see [`growth_for`](Self::growth_for)).
    pub(super) fn take(&mut self, granules: u32, align: u32) -> Option<u32> {
        debug_assert!(granules > 0 && align.is_power_of_two());
        self.best_fit(granules, align)
    }

    /// The size in pages the memory needs for `take(granules, align)` to
    /// succeed, counting a free run that touches the end; `None` if that is
    /// past the maximum.
    pub(super) fn growth_for(&self, granules: u32, align: u32) -> Option<u32> {
        let end = self.size * PAGE_GRANULES;
        let tail_start = self
            .by_start
            .range(..end)
            .next_back()
            .filter(|&(&start, &len)| start + len == end)
            .map_or(end, |(&start, _)| start);
        let first = u64::from(tail_start.max(1)).next_multiple_of(u64::from(align));
        let pages = (first + u64::from(granules)).div_ceil(u64::from(PAGE_GRANULES));
        u32::try_from(pages)
            .ok()
            .filter(|&pages| pages <= self.max)
            .map(|pages| pages.max(self.size))
    }

    fn best_fit(&mut self, granules: u32, align: u32) -> Option<u32> {
        let (len, run) = self
            .by_size
            .range((granules, 0)..)
            .copied()
            .find(|&(len, run)| run.next_multiple_of(align) + granules <= run + len)?;
        self.remove_free(run, len);
        let start = run.next_multiple_of(align);
        if start > run {
            self.insert_free(run, start - run);
        }
        let end = start + granules;
        if end < run + len {
            self.insert_free(end, run + len - end);
        }
        self.high_water = self.high_water.max(end);
        Some(start)
    }

    /// Returns `start..start + granules`, merging it with free neighbours.
    /// Returns the pages to hand back to the OS, if the batch is due.
    pub(super) fn give_back(&mut self, start: u32, granules: u32) -> CleanPages<'_> {
        self.merge_free(start, granules);
        for page in pages_of(start, granules) {
            if self.free_in_page[page as usize] == PAGE_GRANULES
                && self.backing[page as usize] == Backing::Dirty
                && !self.listed[page as usize]
            {
                self.listed[page as usize] = true;
                self.dirty.push(page);
            }
        }
        let runs = if self.dirty.len() > DIRTY_LIMIT {
            self.decommit_batch()
        } else {
            Vec::new()
        };
        CleanPages {
            runs,
            _pool: core::marker::PhantomData,
        }
    }

    /// Once more than [`DIRTY_LIMIT`] pages are wholly free and dirty,
    /// marks them all clean and returns them as runs, for the caller to hand
    /// back to the OS while still holding the pool. Pages listed but since
    /// reused leave the list, so churn that reuses pages never triggers it.
    fn decommit_batch(&mut self) -> Vec<PageRun> {
        let mut pages = core::mem::take(&mut self.dirty);
        pages.retain(|&page| {
            let eligible = self.free_in_page[page as usize] == PAGE_GRANULES
                && self.backing[page as usize] == Backing::Dirty;
            self.listed[page as usize] = eligible;
            eligible
        });
        if pages.len() <= DIRTY_LIMIT {
            self.dirty = pages;
            return Vec::new();
        }
        pages.sort_unstable();
        let mut runs: Vec<PageRun> = Vec::new();
        for page in pages {
            self.backing[page as usize] = Backing::Clean;
            self.listed[page as usize] = false;
            match runs.last_mut() {
                Some((first, count)) if *first + *count == page => *count += 1,
                _ => runs.push((page, 1)),
            }
        }
        runs
    }

    /// Frees `start..start + granules`, merged with its free neighbours (P1).
    fn merge_free(&mut self, start: u32, granules: u32) {
        let (mut run, mut len) = (start, granules);
        if let Some((&before, &before_len)) = self.by_start.range(..run).next_back()
            && before + before_len == run
        {
            self.remove_free(before, before_len);
            run = before;
            len += before_len;
        }
        if let Some(&after_len) = self.by_start.get(&(start + granules)) {
            self.remove_free(start + granules, after_len);
            len += after_len;
        }
        self.insert_free(run, len);
    }

    fn insert_free(&mut self, start: u32, len: u32) {
        debug_assert!(len > 0 && start > 0);
        self.by_start.insert(start, len);
        self.by_size.insert((len, start));
        self.count(start, len, true);
    }

    fn remove_free(&mut self, start: u32, len: u32) {
        self.by_start.remove(&start);
        self.by_size.remove(&(len, start));
        self.count(start, len, false);
    }

    /// Keeps P3 (and marks pages that get handed out dirty).
    fn count(&mut self, start: u32, len: u32, free: bool) {
        let end = start + len;
        for page in pages_of(start, len) {
            let lo = start.max(page * PAGE_GRANULES);
            let hi = end.min((page + 1) * PAGE_GRANULES);
            let slot = &mut self.free_in_page[page as usize];
            if free {
                *slot += hi - lo;
            } else {
                *slot -= hi - lo;
                self.backing[page as usize] = Backing::Dirty;
            }
        }
    }

    /// Free granules in all (for tests and statistics).
    #[cfg(test)]
    fn free_granules(&self) -> u32 {
        self.by_start.values().sum()
    }
}

/// The pages that `start..start + len` (granules) touches.
fn pages_of(start: u32, len: u32) -> core::ops::Range<u32> {
    start / PAGE_GRANULES..(start + len).div_ceil(PAGE_GRANULES)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn takes_the_best_fit_and_merges_neighbours_back() {
        let mut pool = Pool::new(4);
        assert_eq!(pool.grow(1), Some(0));
        assert_eq!(
            pool.free_granules(),
            PAGE_GRANULES - 1,
            "granule 0 is never free"
        );
        let a = pool.take(4, 1).unwrap();
        let b = pool.take(2, 1).unwrap();
        let c = pool.take(4, 1).unwrap();
        assert_eq!((a, b, c), (1, 5, 7));
        let _ = pool.give_back(b, 2);
        assert_eq!(pool.take(1, 1).unwrap(), b, "the 2-granule hole fits best");
        let _ = pool.give_back(b, 1);
        let _ = pool.give_back(a, 4);
        let _ = pool.give_back(c, 4);
        assert_eq!(pool.free_granules(), PAGE_GRANULES - 1);
        assert_eq!(pool.by_start.len(), 1, "one run again");
    }

    #[test]
    fn grows_just_enough_and_aligns() {
        let mut pool = Pool::new(3);
        assert_eq!(pool.take(1, 1), None);
        assert_eq!(
            pool.growth_for(PAGE_GRANULES, 1),
            Some(2),
            "page 0 lacks granule 0"
        );
        pool.grow(1).unwrap();
        assert_eq!(
            pool.growth_for(PAGE_GRANULES, 1),
            Some(2),
            "the tail counts"
        );
        pool.grow(1).unwrap();
        assert_eq!(pool.take(PAGE_GRANULES, 1), Some(1));
        assert_eq!(pool.growth_for(8, PAGE_GRANULES), Some(3));
        assert_eq!(
            pool.growth_for(3 * PAGE_GRANULES, 1),
            None,
            "past the maximum"
        );
        pool.grow(1).unwrap();
        let aligned = pool.take(8, PAGE_GRANULES).unwrap();
        assert_eq!(aligned, 2 * PAGE_GRANULES);
        assert_eq!(pool.grow(1), None);
    }

    #[test]
    fn wholly_free_dirty_pages_go_back_in_batches() {
        let pages = DIRTY_LIMIT as u32 + 8;
        let mut pool = Pool::new(pages + 1);
        pool.grow(pages + 1).unwrap();
        let mut blocks = Vec::new();
        for _ in 0..pages {
            blocks.push(pool.take(PAGE_GRANULES, PAGE_GRANULES).unwrap());
        }
        let mut returned = Vec::new();
        for block in blocks {
            returned.extend_from_slice(pool.give_back(block, PAGE_GRANULES).runs());
        }
        let total: u32 = returned.iter().map(|&(_, n)| n).sum();
        assert_eq!(
            total,
            DIRTY_LIMIT as u32 + 1,
            "one batch, once past the limit"
        );
        assert!(returned.iter().all(|&(first, _)| first >= 1));
        // Reuse marks pages dirty again; clean pages are not returned twice.
        let again = pool.take(PAGE_GRANULES, PAGE_GRANULES).unwrap();
        assert!(pool.give_back(again, PAGE_GRANULES).runs().is_empty());
    }
}
