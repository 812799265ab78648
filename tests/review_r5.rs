//! Review R5: the arena's read-unlock guess (a read guard's drop first
//! tries one compare-and-swap from the lone reader's word), attacked with
//! real threads. It passed on the branch; kept as evidence of what was
//! attacked.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use slotarena::{MemoryError, SlotArena};

/// Readers on several threads, owned and borrowed,
/// racing removals and stores in a full arena: the capacity stays exact,
/// a stale key never reaches a later value, every value drops once.
#[test]
fn r5_read_unlocks_racing_removals_keep_capacity_and_drops_exact() {
    const SLOTS: usize = 4;
    let drops = Arc::new(AtomicUsize::new(0));
    struct Counted(Arc<AtomicUsize>, u64);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let arena = SlotArena::new(SLOTS);
    let stored = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..3u64)
        .map(|t| {
            let (arena, drops, stored) = (arena.clone(), Arc::clone(&drops), Arc::clone(&stored));
            thread::spawn(move || {
                for round in 0..3000u64 {
                    let id = t << 32 | round;
                    let key = match arena.insert(Counted(Arc::clone(&drops), id)) {
                        Ok(key) => key,
                        Err(_) => continue,
                    };
                    stored.fetch_add(1, Ordering::SeqCst);
                    let owned = arena.get_owned(key).unwrap();
                    let first = arena.get(key).unwrap();
                    assert_eq!(first.1, id);
                    assert_eq!(slotarena::arena::ReadGuard::key(&first), key);
                    drop(first);
                    if round % 2 == 0 {
                        arena.remove(key).unwrap();
                        assert_eq!(owned.1, id);
                        assert_eq!(slotarena::arena::OwnedReadGuard::key(&owned), key);
                        drop(owned);
                    } else {
                        drop(owned);
                        assert_eq!(arena.take(key).ok().map(|v| v.1), Some(id));
                    }
                    match arena.get(key) {
                        Err(MemoryError::StaleToken | MemoryError::NotAllocated) => {}
                        Ok(value) => panic!("a stale key reached {}", value.1),
                        Err(e) => panic!("{e:?}"),
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(drops.load(Ordering::SeqCst), stored.load(Ordering::SeqCst));
    let stored_all: Vec<bool> = (0..SLOTS)
        .map(|i| arena.insert(Counted(Arc::clone(&drops), i as u64)).is_ok())
        .collect();
    assert!(
        stored_all.iter().all(|&ok| ok),
        "capacity is exact: {stored_all:?}"
    );
    assert_eq!(arena.len(), SLOTS);
}
