//! W1, W2, W5 or W6 alone on one implementation, for instruction counts
//! that the machine's noise does not move:
//! `valgrind --tool=callgrind target/release/slots_profile [W1|W2|W5|W6] [rounds] [implementation]`
//! with the implementation one of `slotarena`, `arena`, `limen-header`,
//! `limen-bare`, `sharded-slab`, `mutex-slab`, `dashmap`, and for W6 also
//! `pinned` (`SlotArena` read through a pinned `Reader`) (W1, 20 000 rounds
//! of slotarena's manager by default). W6 runs one thread's share of the
//! workload (the same hot values, 0.1% writes) on one thread: it counts
//! the work of a read, not the cost of the cache line bouncing. Subtract a run with fewer rounds to
//! drop the set-up: (I refs at 40 000 − I refs at 20 000) ÷ 20 000 is the
//! cost of one round. W5 runs its producer and consumer threads, which
//! valgrind runs one at a time, so its count includes the channel's
//! hand-offs and varies a little with valgrind's thread switches (compare
//! runs at the same round counts).

use std::hint::black_box;

use slotarena_bench::slots::{
    self, Arena, Dash, LimenBare, LimenHeader, MutexSlab, Ours, SLOTS, Sharded, Store,
};

fn run<S: Store>(workload: &str, rounds: u64) {
    let store = S::new(SLOTS);
    match workload {
        "W1" => slots::w1_round(&store, 0, rounds),
        "W2" => {
            let keys = slots::prefill(&store);
            black_box(slots::w2(&store, &keys, rounds));
        }
        "W5" => {
            black_box(slots::w5(&std::sync::Arc::new(store), rounds));
        }
        "W6" => {
            let keys = slots::hot_keys(&store);
            slots::w6_round(&store, &keys, 0, rounds, |key| store.read(key));
        }
        other => panic!("slots_profile runs W1, W2, W5 or W6, not {other}"),
    }
}

/// W6 on one thread, reading through a pinned `Reader`.
fn run_pinned(rounds: u64) {
    let store = Arena::new(SLOTS);
    let keys = slots::hot_keys(&store);
    let mut reader = store.reader();
    slots::w6_round(&store, &keys, 0, rounds, |key| {
        slots::pinned_read(&mut reader, key)
    });
}

fn main() {
    let mut args = std::env::args().skip(1);
    let workload = args.next().unwrap_or_else(|| "W1".to_string());
    let rounds = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    match args.next().as_deref().unwrap_or("slotarena") {
        "slotarena" => run::<Ours>(&workload, rounds),
        "arena" => run::<Arena>(&workload, rounds),
        "limen-header" => run::<LimenHeader>(&workload, rounds),
        "limen-bare" => run::<LimenBare>(&workload, rounds),
        "sharded-slab" => run::<Sharded>(&workload, rounds),
        "mutex-slab" => run::<MutexSlab>(&workload, rounds),
        "dashmap" => run::<Dash>(&workload, rounds),
        "pinned" if workload == "W6" => run_pinned(rounds),
        other => panic!("no implementation {other}"),
    }
}
