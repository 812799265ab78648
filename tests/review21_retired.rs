//! Review of issue 21: a slot retiring (its generations used up) while a
//! thread waits for room.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use slotarena::SlotArena;

/// `insert_wait` documents that the value comes back "when the wait ends
/// without room (or the arena can never have room: a maximum capacity of
/// zero)". A waiter that is already asleep when the arena's last slot
/// retires is never told: `Core::recycle` retires the slot without
/// `room.notify_one()`, so the waiter sleeps forever on an arena whose
/// `max_capacity()` is 0.
#[test]
fn a_waiter_learns_that_the_arena_can_never_have_room_when_its_last_slot_retires() {
    let mut arena = SlotArena::<u32>::new(1);
    assert!(arena.__set_free_generation(0, u32::MAX));
    let last = arena.insert(1).unwrap();
    assert_eq!(last.generation(), u32::MAX);

    let (sent, answer) = mpsc::channel();
    let waiter = {
        let arena = arena.clone();
        thread::spawn(move || {
            let result = arena.insert_wait(2).map_err(|error| error.into_inner());
            let _ = sent.send(result);
        })
    };
    // Let the waiter register and go to sleep.
    thread::sleep(Duration::from_millis(200));
    arena.remove(last).unwrap();
    assert_eq!(
        (arena.capacity(), arena.max_capacity()),
        (0, 0),
        "the slot retired"
    );
    // Had the waiter not yet slept, it would see max_capacity() == 0 and
    // answer at once; asleep, it must be woken to find out.
    let got = answer.recv_timeout(Duration::from_secs(3));
    assert_eq!(
        got.ok(),
        Some(Err(2)),
        "insert_wait is still asleep 3 s after the arena's only slot retired (max_capacity() == 0)"
    );
    waiter.join().unwrap();
}
