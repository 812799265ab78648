//! The memory managers.
//!
//! | manager | capacity | sharing | guards |
//! |---|---|---|---|
//! | [`StaticMemoryManager<P, N>`](crate::StaticMemoryManager) | `N`, inline, no allocation | one owner (`&mut`) | `&` / `&mut` |
//! | [`HeapMemoryManager<P>`](crate::HeapMemoryManager) | chosen at run time | one owner (`&mut`) | `&` / `&mut` |
//! | [`ConcurrentMemoryManager<P>`](crate::ConcurrentMemoryManager) | run time, optionally growing | any thread, cheap `Clone` handle | per-slot lock guards |

#[cfg(feature = "std")]
mod concurrent;
#[cfg(feature = "alloc")]
mod heap_manager;
mod sequential;
mod static_manager;

#[cfg(all(test, feature = "std"))]
pub(crate) use concurrent::ShareWord;
#[cfg(feature = "std")]
pub use concurrent::{ConcurrentMemoryManager, HeaderGuard, ReadGuard, WriteGuard};
#[cfg(feature = "alloc")]
pub use heap_manager::HeapMemoryManager;
pub use static_manager::StaticMemoryManager;
