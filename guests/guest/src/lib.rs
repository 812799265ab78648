//! A guest whose `#[global_allocator]` is the host's allocator: every
//! `Vec`, `String` and `Box` of this guest lives in blocks of the host's
//! `slotarena` memory, allocated and freed through the `slotarena.alloc`
//! and `slotarena.free` imports. With feature `std-alloc` it keeps std's
//! own allocator instead (the baseline of the host's benchmark).
//!
//! Exports (pointers and lengths are `u32`; a value is `ptr << 32 | len`):
//! - `transform(ptr, len) -> value`: reads the `len` bytes at `ptr` (a
//!   block the host allocated, which the guest now owns), frees them, and
//!   returns a new block holding them upper-cased and reversed, allocated
//!   by the guest through the shared allocator; the host reads and frees
//!   it.
//! - `consume(ptr, len) -> u32`: reads the bytes, frees them, returns
//!   their sum.
//! - `echo_transfer(ptr) -> ptr`: takes a value in surrealism's `Transfer`
//!   layout (`[len: u32 LE][len bytes]`, a block of `4 + len` bytes the
//!   host allocated, which the guest now owns), frees it, and returns a
//!   copy in a new block of the same layout, allocated by the guest through
//!   the shared allocator; the host `receive`s it (reads and frees it).
//! - `churn(rounds) -> u32`: allocates, fills and drops `Vec`s of varying
//!   sizes `rounds` times.
//! - `__sr_alloc(len) -> ptr` / `__sr_free(ptr, len)`: the guest allocator
//!   called from the host (surrealism's way of passing values).

use std::alloc::{Layout, alloc, dealloc};
use std::hint::black_box;

#[cfg(not(feature = "std-alloc"))]
mod host {
    use std::alloc::{GlobalAlloc, Layout};

    #[link(wasm_import_module = "slotarena")]
    unsafe extern "C" {
        /// The pointer (> 0), or minus an error code.
        #[link_name = "alloc"]
        fn host_alloc(len: u32, align: u32) -> i64;
        /// 0, or an error code.
        #[link_name = "free"]
        fn host_free(ptr: u32, len: u32) -> i32;
    }

    /// The host's allocator, through its imports.
    struct HostAlloc;

    // SAFETY: the host hands out distinct live blocks of at least the size
    // and alignment asked for, inside this guest's memory, and keeps them
    // until they are freed with their exact length, which `dealloc` passes.
    unsafe impl GlobalAlloc for HostAlloc {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            // SAFETY: an import call; it answers for any arguments.
            let answer = unsafe { host_alloc(layout.size() as u32, layout.align() as u32) };
            if answer > 0 {
                answer as usize as *mut u8
            } else {
                core::ptr::null_mut()
            }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: an import call; a refused free changes nothing, and
            // `GlobalAlloc` has no way to report it.
            let code = unsafe { host_free(ptr as u32, layout.size() as u32) };
            debug_assert_eq!(code, 0, "the host refused a free");
        }
    }

    #[global_allocator]
    static ALLOCATOR: HostAlloc = HostAlloc;
}

/// The layout of a `len`-byte value block, as the host allocates them.
fn block(len: u32) -> Layout {
    Layout::from_size_align(len.max(1) as usize, 8).expect("a u32 length fits")
}

/// Moves the block the host passed into a `Vec`, so the guest's allocator
/// frees it; `ptr` came from `slotarena.alloc(len)` (or `__sr_alloc`).
///
/// # Safety
///
/// `ptr` is a live block of exactly `len` bytes with layout [`block`].
unsafe fn take(ptr: u32, len: u32) -> Vec<u8> {
    // SAFETY: the caller's obligation: the block is live and `len` long.
    let bytes = unsafe { core::slice::from_raw_parts(ptr as usize as *const u8, len as usize) };
    let owned = bytes.to_vec();
    // SAFETY: the caller's obligation: allocated with this very layout.
    unsafe { dealloc(ptr as usize as *mut u8, block(len)) };
    owned
}

/// See the crate docs.
///
/// # Safety
///
/// As [`take`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn transform(ptr: u32, len: u32) -> u64 {
    // SAFETY: the caller's obligation.
    let input = unsafe { take(ptr, len) };
    let output: Vec<u8> = input.iter().rev().map(u8::to_ascii_uppercase).collect();
    let mut output = output.into_boxed_slice();
    let (out_ptr, out_len) = (output.as_mut_ptr() as usize as u64, output.len() as u64);
    core::mem::forget(output);
    out_ptr << 32 | out_len
}

/// See the crate docs.
///
/// # Safety
///
/// As [`take`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn consume(ptr: u32, len: u32) -> u32 {
    // SAFETY: the caller's obligation: a live block of `len` bytes.
    let bytes = unsafe { core::slice::from_raw_parts(ptr as usize as *const u8, len as usize) };
    let sum = bytes.iter().map(|&byte| u32::from(byte)).sum();
    // SAFETY: the caller's obligation: allocated with this very layout.
    unsafe { dealloc(ptr as usize as *mut u8, block(len)) };
    sum
}

/// See the crate docs.
///
/// # Safety
///
/// `ptr` is a live block of `4 + len` bytes with layout [`block`], whose
/// first four bytes hold `len` (little-endian).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn echo_transfer(ptr: u32) -> u32 {
    let mut prefix = [0u8; 4];
    // SAFETY: the caller's obligation: the block holds at least the prefix.
    unsafe { core::ptr::copy_nonoverlapping(ptr as usize as *const u8, prefix.as_mut_ptr(), 4) };
    let len = u32::from_le_bytes(prefix);
    // SAFETY: the caller's obligation: the block is `4 + len` bytes long.
    let value = unsafe { take(ptr, 4 + len) };
    let copy = value.into_boxed_slice();
    Box::into_raw(copy).cast::<u8>() as usize as u32
}

/// See the crate docs.
#[unsafe(no_mangle)]
pub extern "C" fn churn(rounds: u32) -> u32 {
    let mut total = 0u32;
    for round in 0..rounds {
        let mut values: Vec<u32> = Vec::with_capacity(4 + (round % 64) as usize);
        values.extend(0..(round % 96));
        let text = format!("{round}");
        total = total.wrapping_add(black_box(&values).len() as u32 + text.len() as u32);
    }
    total
}

/// Allocates a `len`-byte block for the host to fill (surrealism's
/// `__sr_alloc`).
#[unsafe(no_mangle)]
pub extern "C" fn __sr_alloc(len: u32) -> u32 {
    // SAFETY: `block` has a non-zero size.
    unsafe { alloc(block(len)) as usize as u32 }
}

/// Frees a block from [`__sr_alloc`] (surrealism's `__sr_free`).
///
/// # Safety
///
/// `ptr` came from `__sr_alloc(len)` and is live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __sr_free(ptr: u32, len: u32) {
    // SAFETY: the caller's obligation.
    unsafe { dealloc(ptr as usize as *mut u8, block(len)) };
}
