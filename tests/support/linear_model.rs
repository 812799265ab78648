//! The reference model of a linear memory: an interval set of live
//! allocations with their expected bytes, driven through several
//! controllers (`Switch` picks the one that makes the next calls, so
//! blocks are freed and claimed through handles other than the one that
//! allocated them). The proptest suite and the fuzz target (through
//! `#[path]`) share it.
//!
//! Its oracle for `OutOfMemory` is the fit promise (`linear` module docs)
//! where a model that does not know where spans lie can decide it: a
//! memory with no live block fits every request that can ever fit, and a
//! request that a block freed since the last successful allocation could
//! hold (a small block of the same size class, or a large block at least
//! as long, at an offset that meets the alignment) never answers
//! `OutOfMemory` and never grows the memory, whichever handle pins the
//! span it sat in.

use std::collections::BTreeMap;

use slotarena::linear::{LinearMemoryController, LinearMemoryError, PAGE_SIZE, SharedLinearMemory};

/// One step. `usize` operands pick a live (or once-live) allocation.
#[derive(Debug, Clone)]
pub enum LinearOp {
    Alloc(u32),
    AllocAligned(u32, u8),
    Free(usize),
    FreeWrongLength(usize, u32),
    FreeRaw(u32, u32),
    Write {
        pick: usize,
        offset: u32,
        len: u32,
        byte: u8,
    },
    RawAccess(u32, u32),
    Verify(usize),
    Grow(u32),
    /// Later calls go through controller `n % CONTROLLERS`.
    Switch(u8),
}

/// Controllers the model drives.
pub const CONTROLLERS: usize = 3;

/// Size class of a small request (`len <= 512`, 8-byte aligned): the block
/// size it rounds up to (`src/linear/classes.rs`).
fn class_size(len: u32) -> u32 {
    if len <= 64 {
        return len.div_ceil(8) * 8;
    }
    // Four classes per power of two: steps of a quarter of the power below.
    let step = 1 << ((31 - (len - 1).leading_zeros()) - 2);
    len.div_ceil(step) * step
}

/// Whether a request of `len` bytes at `align` is a small block.
fn is_small(len: u32, align: u32) -> bool {
    len <= 512 && align <= 8
}

/// The model next to the real memory and its controllers.
pub struct LinearModel {
    memory: SharedLinearMemory,
    controllers: Vec<LinearMemoryController>,
    /// The controller that makes the next calls.
    current: usize,
    max_pages: u32,
    /// Live allocations: start → expected bytes.
    live: BTreeMap<u32, Vec<u8>>,
    /// The alignment each live allocation was asked with.
    aligns: BTreeMap<u32, u32>,
    /// Blocks freed since the last successful allocation, `(ptr, len,
    /// align)`: room that no allocation can have taken since.
    freed: Vec<(u32, u32, u32)>,
    /// Every pointer ever returned, live or not, to aim frees at.
    seen: Vec<u32>,
    /// The same, as a set: freeing one that is not live now answers
    /// `DoubleFree`, whatever took its bytes since; any other pointer that
    /// is no live allocation's start answers `UnknownPointer`.
    ever: std::collections::BTreeSet<u32>,
}

impl LinearModel {
    pub fn new(initial_pages: u32, max_pages: u32) -> LinearModel {
        let memory = SharedLinearMemory::new(initial_pages, max_pages).unwrap();
        let controllers = (0..CONTROLLERS)
            .map(|_| LinearMemoryController::new(&memory))
            .collect();
        LinearModel {
            memory,
            controllers,
            current: 0,
            max_pages,
            live: BTreeMap::new(),
            aligns: BTreeMap::new(),
            freed: Vec::new(),
            seen: Vec::new(),
            ever: std::collections::BTreeSet::new(),
        }
    }

    fn controller(&mut self) -> &mut LinearMemoryController {
        &mut self.controllers[self.current]
    }

    /// Whether the block `(ptr, len, align)`, freed, holds a request of
    /// `len` bytes at `align` (see the module docs).
    fn could_hold(freed: (u32, u32, u32), len: u32, align: u32) -> bool {
        let (ptr, freed_len, freed_align) = freed;
        if is_small(len, align) {
            is_small(freed_len, freed_align) && class_size(freed_len) == class_size(len)
        } else {
            !is_small(freed_len, freed_align)
                && ptr % align.max(256) == 0
                && len.div_ceil(256) <= freed_len.div_ceil(256)
        }
    }

    /// Bookkeeping of a successful free of the live block at `ptr`.
    fn freed_block(&mut self, ptr: u32) {
        let bytes = self.live.remove(&ptr).expect("a live block");
        let align = self.aligns.remove(&ptr).expect("a live block's alignment");
        self.freed.push((ptr, bytes.len() as u32, align));
    }

    fn pick(&self, choice: usize) -> Option<u32> {
        (!self.seen.is_empty()).then(|| self.seen[choice % self.seen.len()])
    }

    /// The live allocation containing byte `ptr`, if any.
    fn containing(&self, ptr: u32) -> Option<(u32, u32)> {
        let (&start, bytes) = self.live.range(..=ptr).next_back()?;
        (ptr < start + bytes.len() as u32).then_some((start, bytes.len() as u32))
    }

    /// Whether a live allocation ends exactly at `ptr`.
    fn ends_at(&self, ptr: u32) -> bool {
        self.live
            .range(..ptr)
            .next_back()
            .is_some_and(|(&start, bytes)| start as u64 + bytes.len() as u64 == ptr as u64)
    }

    fn after_alloc(
        &mut self,
        op: &LinearOp,
        len: u32,
        align: u32,
        size_before: u32,
        got: Result<u32, LinearMemoryError>,
    ) {
        let holder = self
            .freed
            .iter()
            .find(|&&freed| Self::could_hold(freed, len, align))
            .copied();
        let limit = self.max_pages as u64 * PAGE_SIZE as u64;
        // Whether the request fits the empty memory at its maximum: nothing
        // starts below 256, a small block (up to 512 bytes, 8-aligned) needs
        // at most 512, a large one whole 256-byte granules at its alignment.
        let possible = if len <= 512 && align <= 8 {
            limit > 0
        } else {
            (align.max(256) as u64) + (len as u64).next_multiple_of(256) <= limit
        };
        match got {
            Ok(ptr) => {
                assert!(len > 0 && possible, "{op:?} succeeded");
                if let Some(freed) = holder {
                    assert_eq!(
                        self.memory.size_pages(),
                        size_before,
                        "{op:?} grew the memory though the freed block {freed:?} holds it"
                    );
                }
                assert_ne!(ptr, 0, "{op:?} returned 0");
                assert_eq!(ptr % align.max(8), 0, "{op:?} misaligned {ptr}");
                let end = ptr as u64 + len as u64;
                assert!(end <= self.memory.size_bytes(), "{op:?} beyond the size");
                if let Some((&before, bytes)) = self.live.range(..ptr).next_back() {
                    assert!(
                        before as u64 + bytes.len() as u64 <= ptr as u64,
                        "{op:?} overlaps {before}"
                    );
                }
                if let Some((&after, _)) = self.live.range(ptr..).next() {
                    assert!(end <= after as u64, "{op:?} overlaps {after}");
                }
                // Unknown initial contents: read them as the expectation.
                let bytes = self.controller().mut_mem(ptr, len).unwrap().to_vec();
                self.controller().release();
                self.live.insert(ptr, bytes);
                self.aligns.insert(ptr, align);
                self.freed.clear();
                self.seen.push(ptr);
                self.ever.insert(ptr);
            }
            Err(LinearMemoryError::ZeroLength) => assert_eq!(len, 0),
            Err(LinearMemoryError::LengthTooLarge) => assert!(len > 0 && !possible, "{op:?}"),
            Err(LinearMemoryError::OutOfMemory) => {
                assert!(possible, "{op:?}: can never fit, yet out of memory");
                // The fit promise: nothing a handle keeps is hidden.
                assert!(
                    !self.live.is_empty(),
                    "{op:?}: out of memory with nothing allocated"
                );
                if let Some(freed) = holder {
                    panic!("{op:?}: out of memory though the freed block {freed:?} holds it");
                }
                // Refused without growing only if growing could not help.
                let size = self.memory.size_pages() as u64;
                let needed = (len.max(align) as u64).div_ceil(PAGE_SIZE as u64);
                // A block may start partway into the last page.
                let needed = needed + 1;
                assert!(
                    size == self.max_pages as u64 || size + needed > self.max_pages as u64,
                    "{op:?}: out of memory at {size} of {} pages",
                    self.max_pages
                );
            }
            Err(e) => panic!("{op:?}: unexpected {e:?}"),
        }
    }

    pub fn step(&mut self, op: &LinearOp) {
        match *op {
            LinearOp::Alloc(len) => {
                let size = self.memory.size_pages();
                let got = self.controller().alloc(len);
                self.after_alloc(op, len, 8, size, got);
            }
            LinearOp::AllocAligned(len, shift) => {
                let align = 1u32 << (shift % 17);
                let size = self.memory.size_pages();
                let got = self.controller().alloc_aligned(len, align);
                self.after_alloc(op, len, align, size, got);
            }
            LinearOp::Free(choice) => {
                let Some(ptr) = self.pick(choice) else { return };
                match self.live.get(&ptr).map(Vec::len) {
                    Some(len) => {
                        assert_eq!(self.controller().free(ptr, len as u32), Ok(()), "{op:?}");
                        self.freed_block(ptr);
                    }
                    None => assert_eq!(
                        self.controller().free(ptr, 8),
                        Err(LinearMemoryError::DoubleFree),
                        "{op:?}: freeing dead {ptr}"
                    ),
                }
            }
            LinearOp::FreeWrongLength(choice, delta) => {
                let Some(ptr) = self.pick(choice) else { return };
                if let Some(len) = self.live.get(&ptr).map(|b| b.len() as u32) {
                    let wrong = len.wrapping_add(delta.max(1));
                    assert_eq!(
                        self.controller().free(ptr, wrong),
                        Err(LinearMemoryError::LengthMismatch),
                        "{op:?}"
                    );
                }
            }
            LinearOp::FreeRaw(ptr, len) => {
                let expected = match self.live.get(&ptr) {
                    Some(bytes) if bytes.len() as u32 == len => Ok(()),
                    Some(_) => Err(LinearMemoryError::LengthMismatch),
                    None if self.ever.contains(&ptr) => Err(LinearMemoryError::DoubleFree),
                    None => Err(LinearMemoryError::UnknownPointer),
                };
                let got = self.controller().free(ptr, len);
                assert_eq!(got, expected, "{op:?}");
                if got.is_ok() {
                    self.freed_block(ptr);
                }
            }
            LinearOp::Write {
                pick,
                offset,
                len,
                byte,
            } => {
                let Some(ptr) = self.pick(pick) else { return };
                let Some(size) = self.live.get(&ptr).map(|b| b.len() as u32) else {
                    return;
                };
                let offset = offset % size;
                let len = len % (size - offset + 1);
                self.controller()
                    .mut_mem(ptr + offset, len)
                    .unwrap()
                    .fill(byte);
                self.controller().release();
                self.live.get_mut(&ptr).unwrap()[offset as usize..(offset + len) as usize]
                    .fill(byte);
            }
            LinearOp::RawAccess(ptr, len) => {
                let got = self
                    .controller()
                    .mut_mem(ptr, len)
                    .map(|bytes| bytes.to_vec());
                self.controller().release();
                match self.containing(ptr) {
                    Some((start, size))
                        if ptr as u64 + len as u64 <= start as u64 + size as u64 =>
                    {
                        let offset = (ptr - start) as usize;
                        let expected = &self.live[&start][offset..offset + len as usize];
                        assert_eq!(got.as_deref(), Ok(expected), "{op:?}");
                    }
                    Some(_) => assert_eq!(got, Err(LinearMemoryError::OutOfBounds), "{op:?}"),
                    // The empty range at the end of an allocation.
                    None if len == 0 && self.ends_at(ptr) => {
                        assert_eq!(got.as_deref(), Ok(&[][..]), "{op:?}")
                    }
                    None => assert_eq!(got, Err(LinearMemoryError::UnknownPointer), "{op:?}"),
                }
            }
            LinearOp::Verify(choice) => {
                let Some(ptr) = self.pick(choice) else { return };
                if let Some(expected) = self.live.get(&ptr) {
                    let controller = &mut self.controllers[self.current];
                    let got = controller.mut_mem(ptr, expected.len() as u32).unwrap();
                    assert!(got == &expected[..], "{op:?}: bytes of {ptr} changed");
                    controller.release();
                }
            }
            LinearOp::Switch(n) => self.current = usize::from(n) % CONTROLLERS,
            LinearOp::Grow(delta) => {
                let before = self.memory.size_pages();
                let got = self.memory.grow(delta);
                if before as u64 + delta as u64 <= self.max_pages as u64 {
                    assert_eq!(got, Ok(before), "{op:?}");
                    assert_eq!(self.memory.size_pages(), before + delta);
                } else {
                    assert_eq!(got, Err(LinearMemoryError::GrowBeyondMaximum), "{op:?}");
                    assert_eq!(self.memory.size_pages(), before);
                }
            }
        }
        let expected_bytes: u64 = self.live.values().map(|b| b.len() as u64).sum();
        assert_eq!(
            self.memory.allocated_bytes(),
            expected_bytes,
            "allocated bytes after {op:?}"
        );
    }

    /// Checks every live allocation's bytes, frees them all and checks that
    /// nothing is left.
    pub fn finish(mut self) {
        for (ptr, expected) in std::mem::take(&mut self.live) {
            let controller = &mut self.controllers[ptr as usize % CONTROLLERS];
            assert!(controller.mut_mem(ptr, expected.len() as u32).unwrap() == &expected[..]);
            controller.free(ptr, expected.len() as u32).unwrap();
        }
        assert_eq!(self.memory.allocated_bytes(), 0);
        // Nothing stays hidden in a handle: with every block freed (and the
        // handles still alive), one controller gets the whole memory.
        let all = (self.max_pages as u64 * PAGE_SIZE as u64).saturating_sub(256);
        if let Ok(all) = u32::try_from(all)
            && all > 512
        {
            let ptr = self.controllers[0].alloc(all).unwrap();
            self.controllers[0].free(ptr, all).unwrap();
        }
    }
}
