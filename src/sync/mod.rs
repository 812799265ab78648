//! The one module that names atomics, locks, parking and loom.
//!
//! Everything concurrent in the crate imports its primitives from here. A
//! normal build gets `core` atomics, `std::sync::Arc`, `parking_lot`'s
//! mutex and `parking_lot_core` parking; a build with
//! `RUSTFLAGS="--cfg loom"` gets loom's model-checked versions under the
//! same names and signatures, so the code loom explores is the code that
//! ships.
//!
//! Parking is the one primitive whose loom twin is a re-implementation:
//! `park(key, validate)` and `unpark_all(key)` are built there on one loom
//! `Mutex` + `Condvar`, with `validate` run under the mutex exactly as
//! `parking_lot_core` runs it under its bucket lock, so a lost wake-up (an
//! unpark between a waiter's check and its sleep) is a deadlock loom finds.

#![allow(unsafe_code)]

#[cfg(not(loom))]
mod std_impl;
#[cfg(not(loom))]
pub(crate) use std_impl::*;
#[cfg(not(loom))]
mod threads;
#[cfg(not(loom))]
pub(crate) use threads::{rehome, thread_hint, thread_identity};

#[cfg(loom)]
mod loom_impl;
#[cfg(loom)]
pub(crate) use loom_impl::*;

pub(crate) use crossbeam_utils::CachePadded;
