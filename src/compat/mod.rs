//! Adapters that let other crates' frameworks run on slotarena.
//!
//! Each adapter sits behind a cargo feature named after the crate it
//! serves, so no user pays for a framework they do not use.
//!
//! | feature | module | serves |
//! |---|---|---|
//! | `limen` | [`limen`] | limen-core 0.1.0-alpha.1 graphs and runtimes |

pub mod limen;
