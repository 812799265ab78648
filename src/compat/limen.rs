//! limen-core's memory-manager family on slotarena.

mod convert;
