//! Compile-time checks of `Send`/`Sync`: handles travel, guards stay put.

#[cfg(feature = "std")]
use slotarena::ConcurrentMemoryManager;
#[cfg(feature = "alloc")]
use slotarena::HeapMemoryManager;
#[cfg(feature = "std")]
use slotarena::guards::{HeaderGuard, ReadGuard, WriteGuard};
use slotarena::{MessageToken, StaticMemoryManager};

fn send_sync<T: Send + Sync>() {}

/// Holds for `T` unless `T` is `!Send`; a type both `Send` and `!Send`
/// would make the second impl ambiguous, which is how `assert_not_send`
/// below fails to compile for a `Send` type.
#[cfg(feature = "std")]
trait AmbiguousIfSend<A> {
    fn check() {}
}
#[cfg(feature = "std")]
impl<T: ?Sized> AmbiguousIfSend<()> for T {}
#[cfg(feature = "std")]
impl<T: ?Sized + Send> AmbiguousIfSend<u8> for T {}

#[cfg(feature = "std")]
macro_rules! assert_not_send {
    ($t:ty) => {
        let _ = <$t as AmbiguousIfSend<_>>::check;
    };
}

#[test]
fn handles_and_tokens_are_send_and_sync() {
    #[cfg(feature = "std")]
    send_sync::<ConcurrentMemoryManager<Vec<u8>>>();
    #[cfg(feature = "alloc")]
    send_sync::<HeapMemoryManager<Vec<u8>>>();
    send_sync::<StaticMemoryManager<u64, 4>>();
    send_sync::<MessageToken>();
    send_sync::<slotarena::MemoryError>();
}

#[cfg(feature = "std")]
#[test]
fn guards_are_not_send() {
    assert_not_send!(ReadGuard<'static, u64>);
    assert_not_send!(WriteGuard<'static, u64>);
    assert_not_send!(HeaderGuard<'static, u64>);
}
