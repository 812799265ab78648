//! The benchmark workloads, written once and shared by the criterion benches
//! (`benches/managers.rs`, `benches/linear.rs`) and the plain-timing report
//! (`examples/bench_report.rs`).
#![allow(dead_code)] // each includer uses its own subset

pub mod linear;
pub mod slots;

/// A small deterministic generator, so every implementation sees the same
/// sequence of choices.
#[derive(Clone)]
pub struct XorShift(pub u64);

impl XorShift {
    #[inline]
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    #[inline]
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
