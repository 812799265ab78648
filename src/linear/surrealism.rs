//! surrealism-types 0.1.1's own controller traits, implemented by
//! [`LinearMemoryController`] (feature `surrealism`), so surrealism's own
//! `Transfer`/`AsyncTransfer` code moves values through this memory.
//!
//! Errors become `anyhow::Error`s wrapping [`LinearMemoryError`] (downcast
//! to match on them). surrealism's *synchronous* `mut_mem` returns a bare
//! slice, with no way to report a refusal, so a refused range panics there
//! with a message that says what went wrong; the asynchronous trait's
//! `mut_mem` returns the error instead. The asynchronous trait's `alloc`
//! and `free` follow the controller's [`WaitPolicy`], as slotarena's own
//! `AsyncMemoryController` does.
//!
//! Claims work as everywhere in this module: the bytes `mut_mem` returns
//! stay claimed until the controller's next call or its drop, and
//! surrealism's code cannot call [`release`](LinearMemoryController::release).
//! Use one controller per transfer or receive (or call `release` between
//! them) when another controller, on another thread or task, is to read
//! the value next.
//!
//! # Examples
//!
//! ```
//! use slotarena::linear::SharedLinearMemory;
//! use surrealism_types::transfer::Transfer;
//!
//! let memory = SharedLinearMemory::new(1, 16).unwrap();
//! let ptr = String::from("hello").transfer(&mut memory.controller()).unwrap();
//! let back = <String as Transfer>::receive(ptr, &mut memory.controller()).unwrap();
//! assert_eq!(back, "hello");
//! assert_eq!(memory.allocated_bytes(), 0);
//! ```

use alloc::boxed::Box;
use core::future::Future;
use core::pin::Pin;

use surrealism_types::controller as surrealism;

use super::LinearMemoryController;
#[cfg(doc)]
use super::{LinearMemoryError, WaitPolicy};

impl surrealism::MemoryController for LinearMemoryController {
    fn alloc(&mut self, len: u32) -> anyhow::Result<u32> {
        Ok(LinearMemoryController::alloc(self, len)?)
    }

    fn free(&mut self, ptr: u32, len: u32) -> anyhow::Result<()> {
        Ok(LinearMemoryController::free(self, ptr, len)?)
    }

    /// # Panics
    ///
    /// If the range is refused (see [`LinearMemoryController::mut_mem`]):
    /// this trait's `mut_mem` has no error path.
    #[track_caller]
    fn mut_mem(&mut self, ptr: u32, len: u32) -> &mut [u8] {
        match LinearMemoryController::mut_mem(self, ptr, len) {
            Ok(bytes) => bytes,
            Err(error) => panic!(
                "slotarena: mut_mem({ptr}, {len}) refused: {error}. surrealism-types' sync \
                 MemoryController::mut_mem cannot return errors: pass pointers and lengths of \
                 live allocations, let the controller that wrote a value make another call, \
                 release() or drop before another reads it, or use AsyncMemoryController, \
                 whose mut_mem returns the error"
            ),
        }
    }
}

/// The boxed future of a surrealism `AsyncMemoryController` method, as
/// `#[async_trait]` declares it.
type BoxedAnswer<'a, T> = Pin<Box<dyn Future<Output = anyhow::Result<T>> + Send + 'a>>;

/// `alloc` and `free` are slotarena's own [`AsyncMemoryController`]'s:
/// they follow the handle's [`WaitPolicy`] (by default they answer at once,
/// like the sync ones; with [`WaitPolicy::Wait`] they await free bytes or
/// the end of another handle's claim), and release the claim left by the
/// last `mut_mem` when called, not when first polled (written out rather
/// than with `#[async_trait]`, whose bodies run only when polled).
///
/// [`AsyncMemoryController`]: super::AsyncMemoryController
impl surrealism::AsyncMemoryController for LinearMemoryController {
    fn alloc<'life0, 'async_trait>(&'life0 mut self, len: u32) -> BoxedAnswer<'async_trait, u32>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        let answer = super::AsyncMemoryController::alloc(self, len);
        Box::pin(async move { Ok(answer.await?) })
    }

    fn free<'life0, 'async_trait>(
        &'life0 mut self,
        ptr: u32,
        len: u32,
    ) -> BoxedAnswer<'async_trait, ()>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        let answer = super::AsyncMemoryController::free(self, ptr, len);
        Box::pin(async move { Ok(answer.await?) })
    }

    fn mut_mem(&mut self, ptr: u32, len: u32) -> anyhow::Result<&mut [u8]> {
        Ok(LinearMemoryController::mut_mem(self, ptr, len)?)
    }
}
