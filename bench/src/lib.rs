//! The benchmark workloads, written once and shared by the criterion benches
//! (`benches/managers.rs`, `benches/linear.rs`) and the plain-timing report
//! (`src/bin/bench_report.rs`). Not published: this crate exists so that
//! criterion and the peer crates are not dev-dependencies of `slotarena`.

pub mod linear;
pub mod slots;
#[cfg(feature = "wasmtime")]
pub mod wasm;

/// A small deterministic generator, so every implementation sees the same
/// sequence of choices.
#[derive(Clone)]
pub struct XorShift(pub u64);

impl XorShift {
    /// The next pseudo-random value.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A pseudo-random value in `0..n`.
    #[inline]
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}
