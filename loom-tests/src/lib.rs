//! Shared helpers for the loom models in `tests/`.
//!
//! Build and run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p slotarena-loom-tests --release`.
