//! L1–L2: the linear-memory workloads, over every allocator.
//!
//! Each thread keeps 256 live blocks; each step frees a random one and
//! allocates a new one (70% 8–256 B, 25% 256–4096 B, 5% 4–64 KiB),
//! touching its first and last byte.

use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use slotarena::linear::{LinearMemoryController, SharedLinearMemory};

use crate::XorShift;
use crate::slots::on_two_threads;

/// Live blocks per thread.
pub const LIVE: usize = 256;
/// Address space every allocator gets: 64 MiB (1024 pages), plenty for
/// two threads' 256 live blocks of at most 64 KiB each.
pub const SPACE: u32 = 64 << 20;

/// The size mix of the workloads.
#[inline]
pub fn size(rng: &mut XorShift) -> u32 {
    let roll = rng.below(100);
    let (low, high) = match roll {
        0..70 => (8, 256),
        70..95 => (256, 4096),
        _ => (4096, 64 * 1024),
    };
    low + rng.below((high - low) as usize) as u32
}

/// A shared allocator; each thread works through its own handle.
pub trait Allocator: Send + Sync + 'static {
    /// One thread's way in.
    type Handle: Send;
    /// What `free` needs to know about a block besides its length.
    type Block: Copy;
    /// The name used in benchmark ids and tables.
    const NAME: &'static str;
    /// A fresh allocator over [`SPACE`] bytes.
    fn new() -> Self;
    /// A handle for one thread.
    fn handle(self: &Arc<Self>) -> Self::Handle;
    /// Allocates `len` bytes and writes their first and last byte.
    fn alloc(handle: &mut Self::Handle, len: u32) -> Self::Block;
    /// Frees a block `alloc` returned for `len` bytes.
    fn free(handle: &mut Self::Handle, block: Self::Block, len: u32);
    /// Bytes of address space spanned so far (highest end), if known.
    fn span(&self) -> Option<u64>;
}

/// slotarena's shared linear memory.
pub struct Ours(SharedLinearMemory);

impl Allocator for Ours {
    type Handle = LinearMemoryController;
    type Block = u32;
    const NAME: &'static str = "slotarena";
    fn new() -> Self {
        Ours(SharedLinearMemory::new(1, SPACE / slotarena::linear::PAGE_SIZE).expect("valid"))
    }
    fn handle(self: &Arc<Self>) -> LinearMemoryController {
        LinearMemoryController::new(&self.0)
    }
    #[inline]
    fn alloc(handle: &mut LinearMemoryController, len: u32) -> u32 {
        // Allocated already claimed: the crate's way to allocate and fill.
        let (ptr, bytes) = handle.alloc_mut(len).expect("room");
        bytes[0] = 1;
        bytes[len as usize - 1] = 2;
        ptr
    }
    #[inline]
    fn free(handle: &mut LinearMemoryController, block: u32, len: u32) {
        handle.free(block, len).expect("live");
    }
    fn span(&self) -> Option<u64> {
        // The highest end ever handed out, as for the peers below (the
        // memory's size in whole 64 KiB pages would round it up).
        Some(self.0.high_water_bytes())
    }
}

/// A raw byte arena for allocators that manage offsets or spans of it.
pub struct Arena {
    base: *mut u8,
    layout: Layout,
}

impl Arena {
    fn new() -> Arena {
        let layout = Layout::from_size_align(SPACE as usize, 16).expect("layout");
        // SAFETY: `layout` has a non-zero size.
        let base = unsafe { std::alloc::alloc_zeroed(layout) };
        assert!(!base.is_null(), "arena allocation failed");
        Arena { base, layout }
    }

    /// Writes the first and last byte of `offset..offset + len`.
    #[inline]
    fn touch(&self, offset: u32, len: u32) {
        assert!(offset as usize + len as usize <= self.layout.size());
        // SAFETY: the range is inside the arena (asserted) and the
        // allocator handed it to this thread alone, so nothing else
        // accesses these bytes now.
        unsafe { self.base.wrapping_add(offset as usize).write(1) };
        // SAFETY: as above, for the last byte of the same block.
        unsafe { self.base.wrapping_add((offset + len - 1) as usize).write(2) };
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.base, self.layout) };
    }
}

// SAFETY: the arena owns its allocation; threads touch disjoint blocks
// handed out by the allocator that guards it.
unsafe impl Send for Arena {}
// SAFETY: as above.
unsafe impl Sync for Arena {}

/// offset-allocator behind a `parking_lot::Mutex`, over a byte arena.
pub struct OffsetAllocator {
    allocator: Mutex<offset_allocator::Allocator>,
    arena: Arena,
    span: Mutex<u64>,
}

impl Allocator for OffsetAllocator {
    type Handle = Arc<OffsetAllocator>;
    type Block = offset_allocator::Allocation;
    const NAME: &'static str = "offset-allocator";
    fn new() -> Self {
        OffsetAllocator {
            allocator: Mutex::new(offset_allocator::Allocator::new(SPACE)),
            arena: Arena::new(),
            span: Mutex::new(0),
        }
    }
    fn handle(self: &Arc<Self>) -> Arc<OffsetAllocator> {
        self.clone()
    }
    #[inline]
    fn alloc(handle: &mut Arc<OffsetAllocator>, len: u32) -> offset_allocator::Allocation {
        // Round to 8 bytes so blocks are aligned like everyone else's.
        let allocation = handle
            .allocator
            .lock()
            .allocate(len.next_multiple_of(8))
            .expect("room");
        let offset = allocation.offset;
        {
            let mut span = handle.span.lock();
            *span = (*span).max(offset as u64 + len as u64);
        }
        handle.arena.touch(offset, len);
        allocation
    }
    #[inline]
    fn free(handle: &mut Arc<OffsetAllocator>, block: offset_allocator::Allocation, _: u32) {
        handle.allocator.lock().free(block);
    }
    fn span(&self) -> Option<u64> {
        Some(*self.span.lock())
    }
}

/// talc behind a `parking_lot::Mutex`, over a byte arena.
pub struct Talc {
    talc: Mutex<talc::Talc<talc::ErrOnOom>>,
    arena: Arena,
    span: Mutex<u64>,
}

// SAFETY: `talc::Talc` holds raw pointers into `arena`, which lives as long
// as it (both are fields here); every use of the allocator goes through the
// mutex, and threads touch only blocks it handed to them.
unsafe impl Send for Talc {}
// SAFETY: as above: shared use is serialised by the mutex.
unsafe impl Sync for Talc {}

impl Allocator for Talc {
    type Handle = Arc<Talc>;
    type Block = NonNull<u8>;
    const NAME: &'static str = "talc";
    fn new() -> Self {
        let arena = Arena::new();
        let mut talc = talc::Talc::new(talc::ErrOnOom);
        let span = talc::Span::from(arena.base..arena.base.wrapping_add(SPACE as usize));
        // SAFETY: the span is the arena's memory, which outlives the
        // allocator (both are fields of `Talc`, the arena is never moved
        // out) and is used by nothing else.
        unsafe { talc.claim(span).expect("claim the arena") };
        Talc {
            talc: Mutex::new(talc),
            arena,
            span: Mutex::new(0),
        }
    }
    fn handle(self: &Arc<Self>) -> Arc<Talc> {
        self.clone()
    }
    #[inline]
    fn alloc(handle: &mut Arc<Talc>, len: u32) -> NonNull<u8> {
        let layout = Layout::from_size_align(len as usize, 8).expect("layout");
        // SAFETY: `layout` has a non-zero size; the allocator is locked.
        let ptr = unsafe { handle.talc.lock().malloc(layout) }.expect("room");
        let offset = (ptr.as_ptr() as usize - handle.arena.base as usize) as u32;
        {
            let mut span = handle.span.lock();
            *span = (*span).max(offset as u64 + len as u64);
        }
        handle.arena.touch(offset, len);
        ptr
    }
    #[inline]
    fn free(handle: &mut Arc<Talc>, block: NonNull<u8>, len: u32) {
        let layout = Layout::from_size_align(len as usize, 8).expect("layout");
        // SAFETY: `block` came from `malloc` with this layout and is freed once.
        unsafe { handle.talc.lock().free(block, layout) };
    }
    fn span(&self) -> Option<u64> {
        Some(*self.span.lock())
    }
}

/// The system allocator (the reference; it has no single address space).
pub struct System;

impl Allocator for System {
    type Handle = ();
    type Block = NonNull<u8>;
    const NAME: &'static str = "system";
    fn new() -> Self {
        System
    }
    fn handle(self: &Arc<Self>) {}
    #[inline]
    fn alloc(_: &mut (), len: u32) -> NonNull<u8> {
        let layout = Layout::from_size_align(len as usize, 8).expect("layout");
        // SAFETY: `layout` has a non-zero size.
        let ptr = NonNull::new(unsafe { std::alloc::alloc(layout) }).expect("system allocation");
        // SAFETY: `ptr` is a fresh allocation of `len >= 1` bytes.
        unsafe { ptr.as_ptr().write(1) };
        // SAFETY: as above; `len - 1` is its last byte.
        unsafe { ptr.as_ptr().wrapping_add(len as usize - 1).write(2) };
        ptr
    }
    #[inline]
    fn free(_: &mut (), block: NonNull<u8>, len: u32) {
        let layout = Layout::from_size_align(len as usize, 8).expect("layout");
        // SAFETY: `block` came from `alloc` with this layout and is freed once.
        unsafe { std::alloc::dealloc(block.as_ptr(), layout) };
    }
    fn span(&self) -> Option<u64> {
        None
    }
}

/// One thread's working set: 256 live blocks and their lengths.
pub struct Working<A: Allocator> {
    handle: A::Handle,
    live: Vec<(A::Block, u32)>,
    rng: XorShift,
    /// Requested bytes live now, and the most ever live at once.
    live_bytes: u64,
    peak_live_bytes: u64,
}

impl<A: Allocator> Working<A> {
    /// Allocates the initial [`LIVE`] blocks through a new handle.
    pub fn new(allocator: &Arc<A>, seed: u64) -> Working<A> {
        let mut handle = allocator.handle();
        let mut rng = XorShift(0xdead_beef_cafe_f00d ^ seed);
        let live = (0..LIVE)
            .map(|_| {
                let len = size(&mut rng);
                (A::alloc(&mut handle, len), len)
            })
            .collect::<Vec<_>>();
        let live_bytes = live.iter().map(|&(_, len)| u64::from(len)).sum();
        Working {
            handle,
            live,
            rng,
            live_bytes,
            peak_live_bytes: live_bytes,
        }
    }

    /// `iters` steps of free-one, allocate-one.
    #[inline(never)]
    pub fn steps(&mut self, iters: u64) {
        for _ in 0..iters {
            let victim = self.rng.below(LIVE);
            let (block, freed) = self.live[victim];
            A::free(&mut self.handle, block, freed);
            let len = size(&mut self.rng);
            self.live[victim] = (A::alloc(&mut self.handle, len), len);
            self.live_bytes = self.live_bytes - u64::from(freed) + u64::from(len);
            self.peak_live_bytes = self.peak_live_bytes.max(self.live_bytes);
        }
    }

    /// The most requested bytes ever live at once: what a perfect
    /// allocator's highest end would be, the denominator of fragmentation.
    pub fn peak_live_bytes(&self) -> u64 {
        self.peak_live_bytes
    }

    /// Frees everything.
    pub fn finish(mut self) {
        for (block, len) in std::mem::take(&mut self.live) {
            A::free(&mut self.handle, block, len);
        }
    }
}

/// L1: one thread, `iters` steps.
pub fn l1<A: Allocator>(working: &mut Working<A>, iters: u64) -> Duration {
    let start = Instant::now();
    working.steps(iters);
    start.elapsed()
}

/// L2: two threads sharing one allocator, `iters` steps each.
pub fn l2<A: Allocator>(allocator: &Arc<A>, iters: u64) -> Duration {
    let allocator = allocator.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let elapsed = on_two_threads(move |t| {
        let mut working = Working::<A>::new(&allocator, t + 7);
        let start = Instant::now();
        working.steps(iters);
        let elapsed = start.elapsed();
        working.finish();
        tx.send(elapsed).expect("collector alive");
    });
    // Setup and teardown are outside the timed steps: report the slower
    // thread's step time, bounded by the wall time.
    rx.iter().take(2).max().unwrap_or(elapsed).min(elapsed)
}
