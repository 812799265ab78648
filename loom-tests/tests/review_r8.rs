//! Review R8 of e6c83eb: `rehome` as the loom models run it (four
//! shards, main on shard 0, thread 1 on shard 1; a model thread moves to
//! the next shard whenever the free pool says it met a thread sharing its
//! shard; see `src/sync/loom_impl.rs`).
//!
//! A thread's home shard is seen from outside: a fresh arena of 64 slots
//! deals indexes 0..16 to shard 0, 16..32 to shard 1 and so on, so a
//! thread's first insert into it pops index `16 × home`. That look is
//! alone on its arena and moves nobody.
#![cfg(loom)]

use loom::thread;
use slotarena::SlotArena;
use slotarena_loom_tests::model_with_branches;

/// The calling model thread's home shard now.
fn home_shard() -> usize {
    let arena = SlotArena::<u8>::new(64);
    arena.insert(0).unwrap().index() / 16
}

/// Finding 2, deterministically. FAILS on e6c83eb.
///
/// Main is alone on shard 0, thread 1 alone on shard 1: no two threads
/// share a shard. Both slots start on shard 0. Main stores and frees one
/// value; thread 1, its own shard empty, steals from shard 0 (a thief,
/// not a sharer). When the thief's pop lands between main's read of the
/// head and its compare-and-swap, main's push (or its store's one try)
/// "met another thread" and `rehome` moves main, onto thread 1's shard:
/// threads that met moved together, where the docs say "threads that meet
/// move apart until each has a shard to itself, if there are enough"
/// (`arena/free_pool.rs`).
///
/// On e6c83eb:
/// `main (alone on shard 0) moved onto thread 1's shard 1 after a steal met it`
///
/// `bash .ci/loom.sh --test review_r8`
#[test]
fn r8_a_thief_never_moves_a_thread_onto_its_own_shard() {
    // The two 64-slot looks at the end are a few hundred operations.
    model_with_branches(10_000, || {
        let arena = SlotArena::<u32>::new(2);
        let thief = {
            let arena = arena.clone();
            thread::spawn(move || {
                let key = arena
                    .insert(1)
                    .unwrap_or_else(|_| panic!("thread 1 refused with a slot free"));
                (key, home_shard())
            })
        };
        let key = arena
            .insert(0)
            .unwrap_or_else(|_| panic!("main refused with a slot free"));
        arena.remove(key).unwrap();
        let (theirs, thief_home) = thief.join().unwrap();
        assert_eq!(arena.get(theirs).map(|v| *v).ok(), Some(1));
        let main_home = home_shard();
        assert_eq!(thief_home, 1, "thread 1 stays home (a thief never moves)");
        assert_ne!(
            main_home, thief_home,
            "main (alone on shard 0) moved onto thread 1's shard {thief_home} after a steal met it"
        );
    });
}
