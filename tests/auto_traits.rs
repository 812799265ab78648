//! Compile-time checks of `Send`/`Sync`: handles and guards travel when
//! their values may, and not otherwise.

#![cfg(feature = "std")]

use std::cell::Cell;

use slotarena::arena::{OwnedReadGuard, OwnedWriteGuard};
use slotarena::guards::{HeaderGuard, ReadGuard, WriteGuard};
use slotarena::{
    ConcurrentMemoryManager, HeapMemoryManager, MessageToken, SlotArena, StaticMemoryManager,
};

fn send_sync<T: Send + Sync>() {}

/// Holds for `T` unless `T` is `!Send`; a type both `Send` and `!Send`
/// would make the second impl ambiguous, which is how `assert_not_send`
/// below fails to compile for a `Send` type.
trait AmbiguousIfSend<A> {
    fn check() {}
}
impl<T: ?Sized> AmbiguousIfSend<()> for T {}
impl<T: ?Sized + Send> AmbiguousIfSend<u8> for T {}

macro_rules! assert_not_send {
    ($t:ty) => {
        let _ = <$t as AmbiguousIfSend<_>>::check;
    };
}

#[test]
fn handles_and_tokens_are_send_and_sync() {
    send_sync::<ConcurrentMemoryManager<Vec<u8>>>();
    send_sync::<HeapMemoryManager<Vec<u8>>>();
    send_sync::<StaticMemoryManager<u64, 4>>();
    send_sync::<MessageToken>();
    send_sync::<slotarena::MemoryError>();
    send_sync::<SlotArena<String>>();
}

/// Our lock has no owning thread, so a guard may be dropped on another
/// thread; owned guards are `'static` too, so a task can hold one across
/// `.await` on a work-stealing runtime.
#[test]
fn guards_of_send_sync_values_are_send() {
    fn send_static<T: Send + Sync + 'static>() {}
    send_sync::<ReadGuard<'static, u64>>();
    send_sync::<WriteGuard<'static, u64>>();
    send_sync::<HeaderGuard<'static, u64>>();
    send_static::<OwnedReadGuard<String>>();
    send_static::<OwnedWriteGuard<String>>();
    send_static::<OwnedReadGuard<(u8, String), String>>();
}

#[test]
fn guards_of_thread_bound_values_are_not_send() {
    assert_not_send!(ReadGuard<'static, Cell<u8>>);
    assert_not_send!(WriteGuard<'static, Cell<u8>>);
    assert_not_send!(OwnedReadGuard<Cell<u8>>);
    assert_not_send!(OwnedWriteGuard<Cell<u8>>);
    assert_not_send!(SlotArena<Cell<u8>>);
}

slotarena::new_key_type! {
    struct Typed;
}

/// The issue-21 types travel as the arena does: a typed arena like an
/// untyped one (the key type never matters), the exclusive view and its
/// iterators like `&mut` of the arena, entries and the by-value iterator
/// like the values they hold.
#[test]
fn typed_arenas_views_entries_and_iterators_travel_with_their_values() {
    use slotarena::arena::{Drain, Exclusive, IntoIter, IterMut, VacantEntry};
    send_sync::<SlotArena<String, Typed>>();
    send_sync::<Typed>();
    send_sync::<Exclusive<'static, String, Typed>>();
    send_sync::<IterMut<'static, String>>();
    send_sync::<Drain<'static, String>>();
    send_sync::<VacantEntry<'static, String, Typed>>();
    send_sync::<IntoIter<String, Typed>>();
    assert_not_send!(SlotArena<Cell<u8>, Typed>);
    assert_not_send!(Exclusive<'static, Cell<u8>>);
    assert_not_send!(IntoIter<Cell<u8>>);
}

/// A guard of a typed arena travels exactly as the untyped one: the key
/// type is a marker that never decides `Send`/`Sync`.
#[test]
fn guards_of_typed_arenas_travel_as_untyped_ones() {
    fn send_static<T: Send + Sync + 'static>() {}
    use slotarena::arena::{ReadGuard, WriteGuard};
    send_sync::<ReadGuard<'static, u64, u64, Typed>>();
    send_sync::<WriteGuard<'static, u64, u64, Typed>>();
    send_sync::<ReadGuard<'static, (u8, u64), u64, Typed>>();
    send_static::<OwnedReadGuard<String, String, Typed>>();
    send_static::<OwnedWriteGuard<String, String, Typed>>();
    send_static::<OwnedWriteGuard<(u8, String), u8, Typed>>();
    assert_not_send!(ReadGuard<'static, Cell<u8>, Cell<u8>, Typed>);
    assert_not_send!(WriteGuard<'static, Cell<u8>, Cell<u8>, Typed>);
    assert_not_send!(OwnedReadGuard<Cell<u8>, Cell<u8>, Typed>);
    assert_not_send!(OwnedWriteGuard<Cell<u8>, Cell<u8>, Typed>);
}

/// Holds for `T` unless `T` is `!Sync`; see `AmbiguousIfSend`.
trait AmbiguousIfSync<A> {
    fn check() {}
}
impl<T: ?Sized> AmbiguousIfSync<()> for T {}
impl<T: ?Sized + Sync> AmbiguousIfSync<u8> for T {}

/// A pinned-read `Reader` may move to another thread, but is not shared:
/// one thread pins at a time through it.
#[test]
fn a_reader_is_send_but_not_sync() {
    fn send<T: Send>() {}
    send::<slotarena::arena::Reader<String>>();
    let _ = <slotarena::arena::Reader<String> as AmbiguousIfSync<_>>::check;
    assert_not_send!(slotarena::arena::Reader<Cell<u8>>);
}
