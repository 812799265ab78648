//! The ABA-tagged free list: no index lost, none handed out twice.
#![cfg(loom)]

use loom::sync::Arc;
use loom::sync::atomic::{AtomicU32, Ordering};
use loom::thread;
use slotarena::__loom::{FreeList, FreeListLinks, NIL};
use slotarena_loom_tests::model;

/// The links of a list, one atomic per index (the arena keeps them in the
/// slots' lifecycle words; here they stand alone).
struct VecLinks(Vec<AtomicU32>);

impl FreeListLinks for VecLinks {
    fn next(&self, index: u32) -> u32 {
        // Relaxed, as in the arena: the list's head CAS orders the links.
        self.0[index as usize].load(Ordering::Relaxed)
    }

    fn set_next(&self, index: u32, next: u32) {
        self.0[index as usize].store(next, Ordering::Relaxed);
    }
}

/// A free list over `n` slots, all free, plus its links.
struct Fixture {
    list: FreeList,
    links: VecLinks,
    /// 1 while the index is handed out; catches double hand-out.
    owned: Vec<AtomicU32>,
}

impl Fixture {
    fn new(n: u32) -> Arc<Fixture> {
        let fixture = Fixture {
            list: FreeList::new(),
            links: VecLinks(
                (0..n)
                    .map(|i| AtomicU32::new(if i + 1 < n { i + 1 } else { NIL }))
                    .collect(),
            ),
            owned: (0..n).map(|_| AtomicU32::new(0)).collect(),
        };
        fixture.list.push_chain(0, n - 1, &fixture.links);
        Arc::new(fixture)
    }

    fn pop(&self) -> Option<u32> {
        let index = self.list.pop(&self.links)?;
        let was = self.owned[index as usize].swap(1, Ordering::Relaxed);
        assert_eq!(was, 0, "index {index} handed out twice");
        Some(index)
    }

    fn push(&self, index: u32) {
        self.owned[index as usize].store(0, Ordering::Relaxed);
        self.list.push(index, &self.links);
    }

    /// Drains the list and checks that exactly `expected` indexes remain.
    fn drain(&self, expected: usize) {
        let mut seen = Vec::new();
        while let Some(index) = self.pop() {
            assert!(!seen.contains(&index), "index {index} twice on the list");
            seen.push(index);
        }
        assert_eq!(seen.len(), expected, "indexes lost: {seen:?}");
    }
}

#[test]
fn two_threads_pop_then_push() {
    model(|| {
        let f = Fixture::new(3);
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let f = f.clone();
                thread::spawn(move || {
                    let index = f.pop().expect("three slots for two threads");
                    f.push(index);
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        f.drain(3);
    });
}

#[test]
fn aba_pop_racing_pop_pop_push_keeps_the_list_intact() {
    // t1 reads head A (next B) and is preempted; t2 pops A and B, pushes A.
    // An untagged head would let t1 install B, which t2 still owns.
    model(|| {
        let f = Fixture::new(3);
        let t1 = {
            let f = f.clone();
            thread::spawn(move || f.pop())
        };
        let a = f.pop();
        let b = f.pop();
        if let Some(a) = a {
            f.push(a);
        }
        let got = t1.join().unwrap();
        let held = usize::from(got.is_some()) + usize::from(b.is_some());
        if let Some(b) = b {
            f.push(b);
        }
        if let Some(got) = got {
            f.push(got);
        }
        assert!(held <= 3);
        f.drain(3);
    });
}

#[test]
fn two_threads_two_rounds_on_two_slots() {
    model(|| {
        let f = Fixture::new(2);
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let f = f.clone();
                thread::spawn(move || {
                    for _ in 0..2 {
                        if let Some(index) = f.pop() {
                            f.push(index);
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        f.drain(2);
    });
}

#[test]
fn three_threads_pop_and_push() {
    model(|| {
        let f = Fixture::new(3);
        let workers: Vec<_> = (0..3)
            .map(|_| {
                let f = f.clone();
                thread::spawn(move || {
                    if let Some(index) = f.pop() {
                        f.push(index);
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        f.drain(3);
    });
}
