//! Waiting for room: a free racing a waiter's registration never loses the
//! wake-up (a lost one is a deadlock, which loom reports).
#![cfg(loom)]

use loom::thread;
use slotarena::SlotArena;
use slotarena_loom_tests::model;

#[test]
fn a_free_racing_a_waiters_registration_never_loses_the_wake_up() {
    model(|| {
        let arena = SlotArena::new(1);
        let held = arena.insert(1u8).unwrap();
        let waiter = {
            let arena = arena.clone();
            thread::spawn(move || arena.insert_wait(2).unwrap())
        };
        arena.remove(held).unwrap();
        let token = waiter.join().unwrap();
        assert_eq!(*arena.get(token).unwrap(), 2);
    });
}

#[test]
fn a_last_guard_racing_a_waiter_wakes_it() {
    model(|| {
        let arena = SlotArena::new(1);
        let held = arena.insert(1u8).unwrap();
        let guard = arena.get_owned(held).unwrap();
        arena.remove(held).unwrap();
        let waiter = {
            let arena = arena.clone();
            thread::spawn(move || arena.insert_wait(2).unwrap())
        };
        drop(guard);
        waiter.join().unwrap();
        assert_eq!(arena.len(), 1);
    });
}

#[test]
fn an_unlock_racing_an_async_waiters_parking_wakes_it() {
    model(|| {
        let arena = SlotArena::new(1);
        let token = arena.insert(1u8).unwrap();
        let reader = arena.get_owned(token).unwrap();
        let unlocker = thread::spawn(move || drop(reader));
        let mut writer = loom::future::block_on(arena.get_mut_owned_async(token)).unwrap();
        *writer = 2;
        drop(writer);
        unlocker.join().unwrap();
        assert_eq!(*arena.get(token).unwrap(), 2);
    });
}
