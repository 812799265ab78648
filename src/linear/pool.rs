//! The pool of free granules: a two-level segregated fit (TLSF) with
//! coalescing, growth of the memory, and the bookkeeping that hands wholly
//! free pages back to the OS.
//!
//! One pool per memory, behind a mutex: it serves spans of the size
//! classes and large blocks. All sizes are in granules (`classes::GRANULE`
//! bytes) and fit `u32` for any memory up to 4 GiB.
//!
//! Free runs sit on one of [`LISTS`] doubly linked lists by size: exact
//! sizes up to 15 granules, then eight lists per power of two. A bitmap of
//! the non-empty lists finds the first list that must hold a fit in a few
//! instructions; the request's own list is searched for a best fit too (its
//! runs may be a little too small). Every operation is O(1) but for that
//! bounded search, the page bookkeeping, and a last look at the rest of
//! the request's own list when no longer run exists (so a take fails only
//! when no free run holds the request: P5). Coalescing uses boundary tags
//! kept out of band: `tag[g]` names the free run (its node) that starts or
//! ends at granule `g`. Runs live in a node table that grows with the
//! number of free runs, so the per-granule cost is one `u32`. A take that
//! splits a long run, or a give-back that merges into one, and leaves it
//! on the same list changes that run's node and tags in place rather than
//! unlisting and relisting it (most takes from the memory's long tail);
//! one that moves a run to another list moves its node, rather than giving
//! it up and making another.
//!
//! Invariants:
//! - P1: free runs never overlap, never touch (neighbours are merged), and
//!   lie below the size; granule 0 is never free (offset 0 is never handed
//!   out).
//! - P2: every free run is on exactly the list of its length; `bits` marks
//!   exactly the non-empty lists.
//! - P3: `free_in_page[p]` is the number of free granules in page `p`.
//! - P4: `tag[g]` is non-zero exactly when `g` is the first or the last
//!   granule of a free run, and is then one more than that run's node.
//! - P5: `take` answers `None` only when no free run can hold the request
//!   (at its alignment).
//! - P6: a wholly free page is dirty (committed) only while it is one of
//!   the at most [`KEPT_PAGES`] pages in `kept`; every other wholly free
//!   page has been handed back to the OS.

use alloc::vec::Vec;

use super::PAGE_SIZE;
use super::classes::GRANULE;

/// Granules per 64 KiB page.
pub(super) const PAGE_GRANULES: u32 = PAGE_SIZE / GRANULE;

/// What a page's bytes are, as far as the OS goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backing {
    /// Never handed out since the memory grew over it, or handed back to
    /// the OS since: reads as zero, costs no memory.
    Clean,
    /// May hold bytes a block wrote (committed by the OS).
    Dirty,
}

/// Size lists: exact sizes `1..16`, then eight per power of two up to
/// 2^24 granules (a 4 GiB memory).
const LISTS: usize = 8 * 23;
/// Words of the non-empty-list bitmap.
const BITMAP_WORDS: usize = LISTS.div_ceil(64);
/// No run: the end of a list.
const NIL: u32 = u32::MAX;

/// The list of free runs of `len` granules (`len >= 1`): runs on list `i`
/// are at least [`list_floor`]`(i)` long and shorter than
/// `list_floor(i + 1)`.
#[inline]
fn list_of(len: u32) -> usize {
    debug_assert!(len > 0);
    if len < 16 {
        return len as usize;
    }
    let log = 31 - len.leading_zeros(); // 4..=31
    (8 * (log - 2) + ((len >> (log - 3)) & 7)) as usize
}

/// Whether a free run of `len` granules that becomes `new_len` long stays
/// on its list (never below 16 granules, where each length has its own).
#[inline]
fn stays_listed(len: u32, new_len: u32) -> bool {
    len >= 16 && new_len >= 16 && list_of(len) == list_of(new_len)
}

/// The shortest run on list `list`.
#[cfg(test)]
fn list_floor(list: usize) -> u64 {
    if list < 16 {
        return list as u64;
    }
    let log = list as u32 / 8 + 2;
    (8 + (list as u64 % 8)) << (log - 3)
}

/// How many runs of the request's own list a take looks at for a best fit.
const SCAN: usize = 16;

/// One free run, on the list of its length.
#[derive(Debug, Clone, Copy)]
struct Node {
    start: u32,
    len: u32,
    /// Neighbours on the list (nodes), or `NIL`.
    prev: u32,
    next: u32,
}

/// The free granules of one memory (see the module docs).
#[derive(Debug)]
pub(super) struct Pool {
    /// Current size in pages.
    size: u32,
    max: u32,
    /// First run (node) of each size list, or `NIL`.
    heads: [u32; LISTS],
    /// Bit `i` set: list `i` is not empty (P2).
    bits: [u64; BITMAP_WORDS],
    /// Boundary tags, one per granule (P4).
    tag: Vec<u32>,
    /// The free runs; unused nodes are on `spare`.
    nodes: Vec<Node>,
    spare: Vec<u32>,
    free_in_page: Vec<u32>,
    backing: Vec<Backing>,
    /// The wholly free pages still committed (P6), oldest first.
    kept: KeptPages,
    /// Highest granule end ever handed out.
    high_water: u32,
}

/// Wholly free pages a memory keeps committed (P6): the newest ones, so a
/// block freed and taken again on the same page (a host passing one value
/// after another into a guest) costs neither a `madvise` nor a page fault,
/// while an idle memory keeps at most this many pages (128 KiB) resident
/// for nothing.
pub(super) const KEPT_PAGES: usize = 2;

/// The wholly free pages still committed, oldest first (P6).
#[derive(Debug, Default)]
struct KeptPages {
    pages: [u32; KEPT_PAGES],
    len: usize,
}

impl KeptPages {
    /// Keeps `page`; answers the oldest kept page if that had to make room.
    fn push(&mut self, page: u32) -> Option<u32> {
        if self.len < KEPT_PAGES {
            self.pages[self.len] = page;
            self.len += 1;
            return None;
        }
        let oldest = self.pages[0];
        self.pages.copy_within(1.., 0);
        self.pages[KEPT_PAGES - 1] = page;
        Some(oldest)
    }

    /// Forgets `page` if it is kept.
    fn remove(&mut self, page: u32) {
        if let Some(at) = self.pages[..self.len].iter().position(|&p| p == page) {
            self.pages.copy_within(at + 1..self.len, at);
            self.len -= 1;
        }
    }
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
            heads: [NIL; LISTS],
            bits: [0; BITMAP_WORDS],
            tag: Vec::new(),
            nodes: Vec::new(),
            spare: Vec::new(),
            free_in_page: Vec::new(),
            backing: Vec::new(),
            kept: KeptPages::default(),
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
        let granules = new as usize * PAGE_GRANULES as usize;
        // Exact: a tag per granule is a sixty-fourth of the memory's bytes
        // already; doubling capacity would make it a thirty-second
        // (bookkeeping stays under a tenth of the bytes in use).
        self.tag.reserve_exact(granules - self.tag.len());
        self.tag.resize(granules, 0);
        self.free_in_page.resize(new as usize, 0);
        self.backing.resize(new as usize, Backing::Clean);
        // Granule 0 is never free (P1).
        let start = (old * PAGE_GRANULES).max(1);
        self.count(start, new * PAGE_GRANULES - start, true);
        self.merge_free(start, new * PAGE_GRANULES - start);
        Some(old)
    }

    /// Takes `granules` granules whose start is a multiple of `align`
    /// granules (a power of two): the best fit among the first runs of the
    /// request's own size list (a bounded look), else the first run of the
    /// next non-empty list, else any run of its own list that fits. `None`
    /// only if no free run holds them (see
    /// [`growth_for`](Self::growth_for)).
    pub(super) fn take(&mut self, granules: u32, align: u32) -> Option<u32> {
        debug_assert!(granules > 0 && align.is_power_of_two());
        let node = if align > 1 {
            self.find_aligned(granules, align)?
        } else {
            self.find(granules)?
        };
        let Node {
            start: run, len, ..
        } = self.nodes[node as usize];
        // A power of two: a mask, not a division (no overflow: a run ends
        // below 2^24 granules).
        let start = (run + align - 1) & !(align - 1);
        let end = start + granules;
        if start == run && end < run + len && stays_listed(len, run + len - end) {
            // The usual split of a long run: what is left stays on the
            // same list, so the node only moves its start (P2, P4).
            self.resize_free(node, end, run + len - end);
        } else {
            // What is left keeps the run's node, moved to its own list.
            match (start > run, end < run + len) {
                (false, false) => self.remove_free(node),
                (false, true) => self.move_free(node, end, run + len - end),
                (true, false) => self.move_free(node, run, start - run),
                (true, true) => {
                    self.move_free(node, run, start - run);
                    self.insert_free(end, run + len - end);
                }
            }
        }
        self.count(start, granules, false);
        self.high_water = self.high_water.max(end);
        Some(start)
    }

    /// A run of at least `granules` (unaligned).
    #[inline]
    fn find(&self, granules: u32) -> Option<u32> {
        let list = list_of(granules);
        // The request's own list: runs there may be too short.
        let mut best: Option<(u32, u32, u32)> = None;
        let mut node = self.heads[list];
        for _ in 0..SCAN {
            if node == NIL {
                break;
            }
            let Node {
                start, len, next, ..
            } = self.nodes[node as usize];
            if len >= granules && best.is_none_or(|(l, s, _)| (len, start) < (l, s)) {
                best = Some((len, start, node));
                if len == granules {
                    break;
                }
            }
            node = next;
        }
        if let Some((_, _, node)) = best {
            return Some(node);
        }
        // Any run of a longer list fits.
        if let Some(list) = self.next_list(list + 1) {
            return Some(self.heads[list]);
        }
        // Else a fitting run may hide further down the request's own list:
        // look at all of it rather than grow or answer `OutOfMemory`
        // (the first that fits; only a memory about to grow gets here).
        while node != NIL {
            let Node { len, next, .. } = self.nodes[node as usize];
            if len >= granules {
                return Some(node);
            }
            node = next;
        }
        None
    }

    /// The first non-empty list at or after `from`.
    #[inline]
    fn next_list(&self, from: usize) -> Option<usize> {
        let mut word = from / 64;
        if word >= BITMAP_WORDS {
            return None;
        }
        let mut bits = self.bits[word] & (u64::MAX << (from % 64));
        loop {
            if bits != 0 {
                return Some(word * 64 + bits.trailing_zeros() as usize);
            }
            word += 1;
            if word == BITMAP_WORDS {
                return None;
            }
            bits = self.bits[word];
        }
    }

    /// The best fit for an aligned request: every run of every list that
    /// may hold it (the rare path: alignment beyond a granule).
    #[cold]
    fn find_aligned(&self, granules: u32, align: u32) -> Option<u32> {
        let mut best: Option<(u32, u32, u32)> = None;
        let mut from = list_of(granules);
        while let Some(list) = self.next_list(from) {
            let mut node = self.heads[list];
            while node != NIL {
                let Node {
                    start, len, next, ..
                } = self.nodes[node as usize];
                let fits = u64::from(start.next_multiple_of(align)) + u64::from(granules)
                    <= u64::from(start) + u64::from(len);
                if fits && best.is_none_or(|(l, s, _)| (len, start) < (l, s)) {
                    best = Some((len, start, node));
                }
                node = next;
            }
            if best.is_some() {
                break;
            }
            from = list + 1;
        }
        best.map(|(_, _, node)| node)
    }

    /// The size in pages the memory needs for `take(granules, align)` to
    /// succeed, counting a free run that touches the end; `None` if that is
    /// past the maximum.
    pub(super) fn growth_for(&self, granules: u32, align: u32) -> Option<u32> {
        let end = self.size * PAGE_GRANULES;
        let tail_start = match end.checked_sub(1).map(|last| self.tag[last as usize]) {
            Some(tag) if tag > 0 => self.nodes[tag as usize - 1].start,
            _ => end,
        };
        let first = u64::from(tail_start.max(1)).next_multiple_of(u64::from(align));
        let pages = (first + u64::from(granules)).div_ceil(u64::from(PAGE_GRANULES));
        u32::try_from(pages)
            .ok()
            .filter(|&pages| pages <= self.max)
            .map(|pages| pages.max(self.size))
    }

    /// Returns `start..start + granules`, merging it with free neighbours.
    /// Returns the pages to hand back to the OS at once, marked clean: every
    /// page this left wholly free that blocks wrote to, except the newest
    /// [`KEPT_PAGES`] wholly free pages of the memory, which stay committed
    /// (P6) so that churn on one page costs no system call and no page
    /// fault per block.
    pub(super) fn give_back(&mut self, start: u32, granules: u32) -> CleanPages<'_> {
        self.count(start, granules, true);
        self.merge_free(start, granules);
        let mut runs: Vec<PageRun> = Vec::new();
        for page in pages_of(start, granules) {
            if self.free_in_page[page as usize] == PAGE_GRANULES
                && self.backing[page as usize] == Backing::Dirty
                && let Some(oldest) = self.kept.push(page)
            {
                self.backing[oldest as usize] = Backing::Clean;
                match runs.last_mut() {
                    Some((first, count)) if *first + *count == oldest => *count += 1,
                    _ => runs.push((oldest, 1)),
                }
            }
        }
        CleanPages {
            runs,
            _pool: core::marker::PhantomData,
        }
    }

    /// Frees `start..start + granules` (not counted in P3 here), merged
    /// with its free neighbours (P1). The merged run takes a neighbour's
    /// node: a merge makes no node.
    fn merge_free(&mut self, start: u32, granules: u32) {
        let (mut run, mut len) = (start, granules);
        // The neighbour whose node the merged run takes.
        let mut kept = None;
        let after = self
            .tag
            .get((start + granules) as usize)
            .copied()
            .unwrap_or(0);
        // The granule before, if free, ends a free run (P1, P4).
        if let Some(before) = start.checked_sub(1) {
            let tag = self.tag[before as usize];
            if tag > 0 {
                let node = self.nodes[tag as usize - 1];
                if after == 0 && stays_listed(node.len, node.len + granules) {
                    // The usual merge into a long run: it stays on its
                    // list, so its node only grows (P2, P4).
                    self.resize_free(tag - 1, node.start, node.len + granules);
                    return;
                }
                kept = Some(tag - 1);
                run = node.start;
                len += node.len;
            }
        }
        // The granule after, if free, starts one.
        if after > 0 {
            let node = self.nodes[after as usize - 1];
            if stays_listed(node.len, node.len + len) {
                if let Some(before) = kept {
                    self.remove_free(before);
                }
                self.resize_free(after - 1, run, node.len + len);
                return;
            }
            len += node.len;
            match kept {
                Some(_) => self.remove_free(after - 1),
                None => kept = Some(after - 1),
            }
        }
        match kept {
            Some(node) => self.move_free(node, run, len),
            None => self.insert_free(run, len),
        }
    }

    /// Makes listed run `node` the run `start..start + len`, on the same
    /// list as before (the caller checked), and moves its tags (P4).
    #[inline]
    fn resize_free(&mut self, node: u32, start: u32, len: u32) {
        let old = self.nodes[node as usize];
        debug_assert_eq!(list_of(old.len), list_of(len), "P2: same list");
        self.tag[old.start as usize] = 0;
        self.tag[(old.start + old.len - 1) as usize] = 0;
        let run = &mut self.nodes[node as usize];
        run.start = start;
        run.len = len;
        self.tag[start as usize] = node + 1;
        self.tag[(start + len - 1) as usize] = node + 1;
    }

    /// Makes listed run `node` the run `start..start + len` on the list of
    /// its new length (P2), with its tags (P4): [`remove_free`] then
    /// [`insert_free`] without giving up the node and making one again.
    ///
    /// [`remove_free`]: Self::remove_free
    /// [`insert_free`]: Self::insert_free
    fn move_free(&mut self, node: u32, start: u32, len: u32) {
        let old = self.nodes[node as usize];
        self.tag[old.start as usize] = 0;
        self.tag[(old.start + old.len - 1) as usize] = 0;
        self.unlink(node, list_of(old.len));
        let run = &mut self.nodes[node as usize];
        run.start = start;
        run.len = len;
        self.link(node, list_of(len));
        self.tag[start as usize] = node + 1;
        self.tag[(start + len - 1) as usize] = node + 1;
    }

    /// Lists the run `start..start + len` and tags its ends (P2, P4).
    #[inline]
    fn insert_free(&mut self, start: u32, len: u32) {
        debug_assert!(len > 0 && start > 0);
        let run = Node {
            start,
            len,
            prev: NIL,
            next: NIL,
        };
        let node = match self.spare.pop() {
            Some(node) => {
                self.nodes[node as usize] = run;
                node
            }
            None => {
                self.nodes.push(run);
                // At most one node per two granules: fits `u32`.
                (self.nodes.len() - 1) as u32
            }
        };
        self.link(node, list_of(len));
        self.tag[start as usize] = node + 1;
        self.tag[(start + len - 1) as usize] = node + 1;
    }

    /// Unlists run `node`, clears its tags and frees the node (P2, P4).
    #[inline]
    fn remove_free(&mut self, node: u32) {
        let Node { start, len, .. } = self.nodes[node as usize];
        debug_assert_eq!(self.tag[start as usize], node + 1);
        self.tag[start as usize] = 0;
        self.tag[(start + len - 1) as usize] = 0;
        self.unlink(node, list_of(len));
        self.spare.push(node);
    }

    /// Puts `node` at the head of list `list` (P2).
    #[inline]
    fn link(&mut self, node: u32, list: usize) {
        let head = self.heads[list];
        let run = &mut self.nodes[node as usize];
        run.prev = NIL;
        run.next = head;
        if head != NIL {
            self.nodes[head as usize].prev = node;
        }
        self.heads[list] = node;
        self.bits[list / 64] |= 1 << (list % 64);
    }

    /// Takes `node` off list `list`, the one it is on (P2).
    #[inline]
    fn unlink(&mut self, node: u32, list: usize) {
        let Node { prev, next, .. } = self.nodes[node as usize];
        if next != NIL {
            self.nodes[next as usize].prev = prev;
        }
        if prev != NIL {
            self.nodes[prev as usize].next = next;
        } else {
            self.heads[list] = next;
            if next == NIL {
                self.bits[list / 64] &= !(1 << (list % 64));
            }
        }
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
                if *slot == PAGE_GRANULES {
                    // No longer wholly free: no longer kept (P6).
                    self.kept.remove(page);
                }
                *slot -= hi - lo;
                self.backing[page as usize] = Backing::Dirty;
            }
        }
    }

    /// Free granules in all (for tests and statistics).
    #[cfg(test)]
    fn free_granules(&self) -> u32 {
        self.runs().map(|(_, len)| len).sum()
    }

    /// Every free run, `(start, len)`, list by list (for tests).
    #[cfg(test)]
    fn runs(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.heads.iter().flat_map(move |&head| {
            core::iter::successors((head != NIL).then_some(head), move |&node| {
                let next = self.nodes[node as usize].next;
                (next != NIL).then_some(next)
            })
            .map(move |node| {
                (
                    self.nodes[node as usize].start,
                    self.nodes[node as usize].len,
                )
            })
        })
    }
}

/// The pages that `start..start + len` (granules) touches.
fn pages_of(start: u32, len: u32) -> core::ops::Range<u32> {
    start / PAGE_GRANULES..(start + len).div_ceil(PAGE_GRANULES)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// A run that a take or a give-back moves to another list keeps its
    /// node (`move_free`): no node is freed and made again.
    #[test]
    fn a_run_moved_to_another_list_keeps_its_node() {
        let mut pool = Pool::new(1);
        pool.grow(1).unwrap();
        let a = pool.take(9, 1).unwrap();
        let _fence = pool.take(1, 1).unwrap();
        let _ = pool.give_back(a, 9);
        let hole = pool.tag[a as usize];
        let used = |pool: &Pool| pool.nodes.len() - pool.spare.len();
        assert_eq!(used(&pool), 2, "the 9-granule hole and the tail");
        // Split twice: what is left of the hole moves to list 6, then 3.
        assert_eq!(pool.take(3, 1), Some(a));
        assert_eq!(pool.take(3, 1), Some(a + 3));
        assert_eq!(
            pool.tag[a as usize + 6],
            hole,
            "the remainder kept the node"
        );
        assert_eq!(used(&pool), 2);
        // A merge with the run after moves that run to list 6.
        let _ = pool.give_back(a + 3, 3);
        assert_eq!(pool.tag[a as usize + 3], hole, "the merged run kept it");
        assert_eq!(used(&pool), 2);
        // A merge with both neighbours keeps the node of the one before.
        let _ = pool.give_back(a, 1);
        let before = pool.tag[a as usize];
        assert_eq!(used(&pool), 3, "the run at a is new");
        let _ = pool.give_back(a + 1, 2);
        assert_eq!(pool.tag[a as usize], before);
        assert_eq!(pool.tag[a as usize + 8], before);
        assert_eq!(pool.runs().find(|&(start, _)| start == a), Some((a, 9)));
        assert_eq!(used(&pool), 2);
    }

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
        assert_eq!(pool.runs().count(), 1, "one run again");
    }

    /// P5 (issue 19, defect 1): the bounded best-fit look at the request's
    /// own list missed a run that fits behind sixteen shorter ones there.
    #[test]
    fn a_fitting_run_behind_sixteen_shorter_ones_on_its_list_is_taken() {
        let mut pool = Pool::new(2);
        pool.grow(2).unwrap();
        let mut holes = Vec::new();
        for _ in 0..16 {
            holes.push(pool.take(16, 1).unwrap());
            pool.take(1, 1).unwrap();
        }
        let fitting = pool.take(17, 1).unwrap();
        pool.take(1, 1).unwrap();
        let rest = pool.free_granules();
        pool.take(rest, 1).unwrap();
        assert_eq!(list_of(16), list_of(17), "one list holds both sizes");
        let _ = pool.give_back(fitting, 17);
        for hole in holes {
            let _ = pool.give_back(hole, 16);
        }
        assert_eq!(pool.take(17, 1), Some(fitting));
        assert_eq!(pool.take(17, 1), None, "no other run holds 17");
    }

    /// P1, P2, P3 and P4 of `pool`, against `free`: which granules are free.
    fn check(pool: &Pool, free: &[bool]) {
        let mut seen = alloc::vec![false; free.len()];
        for (list, &head) in pool.heads.iter().enumerate() {
            let bit = pool.bits[list / 64] & (1 << (list % 64)) != 0;
            assert_eq!(bit, head != NIL, "P2: list {list}'s bit");
            let mut node = head;
            while node != NIL {
                let Node {
                    start, len, next, ..
                } = pool.nodes[node as usize];
                assert_eq!(list_of(len), list, "P2: run {start}+{len}");
                assert_eq!(pool.tag[start as usize], node + 1, "P4");
                assert_eq!(pool.tag[(start + len - 1) as usize], node + 1, "P4");
                for g in start..start + len {
                    assert!(!seen[g as usize], "P1: {g} in two runs");
                    seen[g as usize] = true;
                }
                node = next;
            }
        }
        assert_eq!(seen, free, "the free runs are the free granules");
        for (g, &tag) in pool.tag.iter().enumerate() {
            if tag > 0 {
                let Node { start, len, .. } = pool.nodes[tag as usize - 1];
                assert!(g as u32 == start || g as u32 == start + len - 1, "P4: {g}");
            }
        }
        for g in 1..free.len() {
            if free[g] && free[g - 1] {
                let tag = pool.tag[g];
                assert!(
                    tag == 0 || pool.nodes[tag as usize - 1].start != g as u32,
                    "P1: {g} touches"
                );
            }
        }
        for (page, &count) in pool.free_in_page.iter().enumerate() {
            let page = page * PAGE_GRANULES as usize;
            let expected = free[page..page + PAGE_GRANULES as usize]
                .iter()
                .filter(|&&f| f)
                .count();
            assert_eq!(count as usize, expected, "P3");
        }
    }

    /// Random takes and gives back, with runs split and merged in place
    /// and through the lists: the invariants hold after every step.
    #[test]
    fn random_takes_and_gives_back_keep_every_invariant() {
        // Smaller under Miri, which runs the crate's unit tests too.
        let (pages, steps) = if cfg!(miri) { (1, 30) } else { (4, 20_000) };
        let mut pool = Pool::new(pages);
        pool.grow(pages).unwrap();
        let mut free = alloc::vec![true; (pages * PAGE_GRANULES) as usize];
        free[0] = false;
        let mut taken: Vec<(u32, u32)> = Vec::new();
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |below: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % below
        };
        for _ in 0..steps {
            if next(2) == 0 || taken.is_empty() {
                let granules = [1, 2, 3, 4, 9, 17, 40, 300][next(8) as usize];
                let align = [1, 1, 1, 2, 4][next(5) as usize];
                if let Some(start) = pool.take(granules, align) {
                    assert_eq!(start % align, 0);
                    for g in start..start + granules {
                        assert!(free[g as usize], "{g} taken twice");
                        free[g as usize] = false;
                    }
                    taken.push((start, granules));
                }
            } else {
                let (start, granules) = taken.swap_remove(next(taken.len() as u64) as usize);
                let _ = pool.give_back(start, granules);
                for g in start..start + granules {
                    free[g as usize] = true;
                }
            }
            check(&pool, &free);
        }
    }

    #[test]
    fn size_lists_cover_every_length_in_order() {
        for len in (1..5000u32).chain([1 << 20, (1 << 24) - 1, 1 << 24]) {
            let list = list_of(len);
            assert!(list < LISTS, "{len}");
            assert!(list_floor(list) <= u64::from(len), "{len} → {list}");
            assert!(u64::from(len) < list_floor(list + 1), "{len} → {list}");
        }
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
    fn wholly_free_dirty_pages_beyond_the_newest_kept_go_back_at_once() {
        const PG: u32 = PAGE_GRANULES;
        let mut pool = Pool::new(5);
        pool.grow(5).unwrap();
        let a = pool.take(4 * PG, PG).unwrap();
        assert_eq!(a, PG);
        // A page with a taken granule stays; freeing its last one keeps it
        // committed while at most KEPT_PAGES are wholly free.
        assert!(pool.give_back(a, 1).runs().is_empty());
        assert!(pool.give_back(a + 1, PG - 1).runs().is_empty());
        assert!(pool.give_back(a + PG, PG).runs().is_empty());
        // A third wholly free page sends the oldest kept one back.
        assert_eq!(pool.give_back(a + 2 * PG, PG).runs(), &[(1, 1)]);
        // Several at once: the newest two stay, the rest go in order.
        assert_eq!(pool.give_back(a + 3 * PG, PG).runs(), &[(2, 1)]);
        assert_eq!(pool.kept.pages, [3, 4]);
        // Taking from a kept page stops keeping it, so it is never handed
        // back to the OS while a block lives on it.
        let b = pool.take(4 * PG, PG).unwrap();
        assert_eq!(b, PG);
        assert_eq!(pool.kept.len, 0);
        // A range of pages: all but the newest two go back, as one run.
        assert_eq!(pool.give_back(b, 4 * PG).runs(), &[(1, 2)]);
        assert_eq!(pool.kept.pages, [3, 4]);
        // Page 0 holds granule 0, never free: never wholly free.
        let d = pool.take(1, 1).unwrap();
        assert!(d < PG);
        assert!(pool.give_back(d, 1).runs().is_empty());
    }
}
