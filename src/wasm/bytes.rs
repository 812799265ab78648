//! Copies into and out of bytes that a running guest may write at the same
//! time: byte-wise atomic copies (`atomic-memcpy`, the P1478 shape), so a
//! racing writer can tear a value but never makes the copy undefined
//! behaviour. No reference to the guest's bytes is ever made here.
//!
//! The copy is done in chunks of [`CHUNK`] bytes and then one byte at a
//! time; `atomic-memcpy` reads and writes each chunk with atomic loads and
//! stores of whole aligned words inside it and of single bytes at its
//! edges. Host handles never copy the same bytes at once (each copy holds
//! the claim on its allocation), so the only racing accesses are the
//! guest's own.

#![allow(unsafe_code)]

use core::mem::MaybeUninit;

use crate::linear::RawClaim;
use crate::sync::Ordering;

/// Bytes per `atomic-memcpy` call.
const CHUNK: usize = 64;

/// Copies `src` into the claimed bytes (`src.len()` of them, at most the
/// claim's length).
pub(crate) fn write_claimed(claim: &RawClaim<'_>, src: &[u8]) {
    assert!(src.len() <= claim.len(), "{} > {}", src.len(), claim.len());
    // SAFETY: the claim's bytes are committed and mapped while it lives
    // (`RawClaim::ptr`), and `src` fits them (checked above); the claim
    // keeps every other host handle off them (C1–C3), and guest memory is
    // never reached by reference (`super` module docs), so the only other
    // accesses are the guest's own.
    unsafe { copy_in(claim.ptr(), src) }
}

/// Copies the first `dst.len()` claimed bytes into `dst`.
pub(crate) fn read_claimed(claim: &RawClaim<'_>, dst: &mut [u8]) {
    assert!(dst.len() <= claim.len(), "{} > {}", dst.len(), claim.len());
    // SAFETY: as in `write_claimed`.
    unsafe { copy_out(claim.ptr(), dst) }
}

/// Copies `src` to `dst..dst + src.len()`.
///
/// # Safety
///
/// - `dst..dst + src.len()` is valid for writes for the whole call and
///   lies in no Rust allocation that a reference covers (guest memory,
///   reached by raw pointer);
/// - every other access to those bytes during the call is either a guest's
///   (foreign code) or one of this module's copies.
unsafe fn copy_in(dst: *mut u8, src: &[u8]) {
    let mut chunks = src.chunks_exact(CHUNK);
    let mut at = dst;
    for chunk in &mut chunks {
        let mut value = [0u8; CHUNK];
        value.copy_from_slice(chunk);
        // SAFETY: `at..at + CHUNK` lies inside the caller's range (we have
        // advanced by whole chunks of `src`, and one more fits), valid for
        // writes (the caller's first obligation); `[u8; CHUNK]` has
        // alignment 1 and no uninitialised bytes; racing accesses are
        // atomic copies or the guest's (second obligation). Relaxed: the
        // claim's release orders the copy for the next handle.
        unsafe { atomic_memcpy::atomic_store(at.cast::<[u8; CHUNK]>(), value, Ordering::Relaxed) };
        at = at.wrapping_add(CHUNK);
    }
    for &byte in chunks.remainder() {
        // SAFETY: as above, for one byte of the caller's range.
        unsafe { atomic_memcpy::atomic_store(at, byte, Ordering::Relaxed) };
        at = at.wrapping_add(1);
    }
}

/// Copies `src..src + dst.len()` into `dst`.
///
/// # Safety
///
/// - `src..src + dst.len()` is valid for reads for the whole call and lies
///   in no Rust allocation that a reference covers;
/// - every other access to those bytes during the call is either a guest's
///   or one of this module's copies.
unsafe fn copy_out(src: *const u8, dst: &mut [u8]) {
    let mut at = src;
    let mut chunks = dst.chunks_exact_mut(CHUNK);
    for chunk in &mut chunks {
        // SAFETY: `at..at + CHUNK` lies inside the caller's range, valid for
        // reads (first obligation); alignment 1; racing accesses are atomic
        // copies or the guest's (second obligation).
        let value: MaybeUninit<[u8; CHUNK]> =
            unsafe { atomic_memcpy::atomic_load(at.cast::<[u8; CHUNK]>(), Ordering::Relaxed) };
        // SAFETY: `atomic_load` copies every byte from `src`, which is
        // initialised (guest memory is zero-filled, then only written as
        // bytes), and any byte pattern is a valid `u8`; a racing write can
        // only mix old and new bytes.
        chunk.copy_from_slice(&unsafe { value.assume_init() });
        at = at.wrapping_add(CHUNK);
    }
    for byte in chunks.into_remainder() {
        // SAFETY: as above, for one byte of the caller's range.
        let value = unsafe { atomic_memcpy::atomic_load(at, Ordering::Relaxed) };
        // SAFETY: as above: a copied, initialised byte.
        *byte = unsafe { value.assume_init() };
        at = at.wrapping_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;

    /// Both copies over every length around the chunk size and every
    /// misalignment of the guest-side pointer. Each case gets fresh bytes:
    /// copies of different shapes over the same bytes are sound when they
    /// do not race (the claims order them), but Miri's weak-memory
    /// emulation cannot yet follow mixed-size atomics (it stops with an
    /// internal error), so the test does not mix them.
    #[test]
    fn copies_round_trip_at_every_length_and_offset() {
        for offset in 0..8 {
            for len in [0, 1, 7, 8, 63, 64, 65, 129, 200] {
                let mut backing = vec![0u64; 32]; // 256 aligned bytes
                let at = backing.as_mut_ptr().cast::<u8>().wrapping_add(offset);
                let src: std::vec::Vec<u8> = (0..len).map(|i| (i * 7 + offset) as u8).collect();
                // SAFETY: `offset + len <= 208 < 256` bytes of `backing`,
                // reached only by raw pointer while no reference is live.
                unsafe { copy_in(at, &src) };
                let mut out = vec![0u8; len];
                // SAFETY: the same range, no writer.
                unsafe { copy_out(at, &mut out) };
                assert_eq!(out, src, "offset {offset} len {len}");
            }
        }
    }
}
