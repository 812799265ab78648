//! The one module that names atomics, locks and loom.
//!
//! Everything concurrent in the crate imports its primitives from here. A
//! normal build gets `core` atomics, `std::sync::{Arc, OnceLock}` and
//! `parking_lot` locks; a build with `RUSTFLAGS="--cfg loom"` gets loom's
//! model-checked versions under the same names and signatures, so the code
//! loom explores is the code that ships.
//!
//! Both backends offer only what both can do: `read`, `write`, `try_read`,
//! `try_write` on `RwLock`, `lock` on `Mutex`, `get`/`get_or_init` on
//! `OnceLock`. No mapped, upgradable or `Arc` guards.

#![allow(unsafe_code)]

#[cfg(not(loom))]
mod std_impl;
#[cfg(not(loom))]
pub(crate) use std_impl::*;

#[cfg(loom)]
mod loom_impl;
#[cfg(loom)]
pub(crate) use loom_impl::*;

/// Pads and aligns a value to 128 bytes so that two hot atomics never share
/// a cache line (adjacent-line prefetch on x86 pulls pairs of 64-byte lines).
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct CachePadded<T>(pub(crate) T);

impl<T> core::ops::Deref for CachePadded<T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        &self.0
    }
}
