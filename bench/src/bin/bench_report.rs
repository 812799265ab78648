//! The benchmark report: every workload of the benches with plain timing,
//! repetitions interleaved across implementations (so a noisy moment hits
//! all of them), medians with min–max, and slotarena's ratio to each peer,
//! printed as a Markdown table. It first probes whether two threads really
//! run at the same time on this machine.
//!
//! `cargo run --release -p slotarena-bench --bin bench_report [repetitions] [workload…]`
//! (default 11 repetitions, every workload; name workloads as `W1`…`L2`).
//! With `--features wasmtime` it adds T1 and T2, values between the host and
//! a wasmtime guest (the guest is built for wasm32-unknown-unknown first).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use slotarena_bench::XorShift;
use slotarena_bench::linear::{self as lin, Allocator, Working};
use slotarena_bench::slots::{
    self, Arena, Dash, LimenBare, LimenHeader, MutexSlab, Ours, SLOTS, Sharded, Store,
};

/// One repetition of one workload for one implementation: nanoseconds per
/// operation (per thread for the two-thread workloads).
type Run = Box<dyn FnMut() -> f64>;

fn per_op(elapsed: Duration, ops: u64) -> f64 {
    elapsed.as_nanos() as f64 / ops as f64
}

fn spin(iterations: u64) -> u64 {
    let mut rng = XorShift(iterations | 1);
    (0..iterations).fold(0, |acc, _| acc ^ rng.next_u64())
}

/// Speedup of two threads over one on pure computation (2.0 = full overlap).
fn two_thread_probe() -> f64 {
    const WORK: u64 = 40_000_000;
    let start = Instant::now();
    black_box(spin(WORK));
    black_box(spin(WORK));
    let one = start.elapsed();
    let two = slots::on_two_threads(|t| {
        black_box(spin(WORK + t));
    });
    one.as_secs_f64() / two.as_secs_f64()
}

/// Messages per W5 repetition, for every store and for the channel alone.
const W5: u64 = 100_000;

fn slot_runs<S: Store>(workload: &str) -> Run {
    const W1: u64 = 200_000;
    const W2: u64 = 1_000_000;
    const W3: u64 = 200_000;
    const W4: u64 = 1_000_000;
    const W6: u64 = 1_000_000;
    let store = Arc::new(S::new(SLOTS));
    match workload {
        "W1" => Box::new(move || per_op(slots::w1(&*store, W1), W1)),
        "W2" => {
            let keys = slots::prefill(&*store);
            Box::new(move || per_op(slots::w2(&*store, &keys, W2), W2))
        }
        "W3" => Box::new(move || per_op(slots::w3(&store, W3), W3)),
        "W4" => {
            let keys = Arc::new(slots::prefill(&*store));
            Box::new(move || per_op(slots::w4(&store, &keys, W4), W4))
        }
        "W5" => Box::new(move || per_op(slots::w5(&store, W5), W5)),
        "W6" => {
            let keys = Arc::new(slots::hot_keys(&*store));
            Box::new(move || per_op(slots::w6(&store, &keys, W6), W6))
        }
        other => unreachable!("no workload {other}"),
    }
}

/// W5 without a store: the channel's own share of every W5 row.
fn channel_only_run() -> Run {
    Box::new(move || per_op(slots::w5_channel_only(W5), W5))
}

/// W6 for `SlotArena<T>` through pinned reads.
fn pinned_run() -> Run {
    const W6: u64 = 1_000_000;
    let store = Arc::new(Arena::new(SLOTS));
    let keys = Arc::new(slots::hot_keys(&*store));
    Box::new(move || per_op(slots::w6_pinned(&store, &keys, W6), W6))
}

/// Linear runs; `space` collects samples of the highest end handed out
/// over the most requested bytes ever live at once.
fn linear_runs<A: Allocator>(workload: &str, space: Arc<parking_lot::Mutex<Vec<f64>>>) -> Run {
    const STEPS: u64 = 100_000;
    let allocator = Arc::new(A::new());
    match workload {
        "L1" => {
            let mut working = Working::new(&allocator, 1);
            Box::new(move || {
                let ns = per_op(lin::l1(&mut working, STEPS), STEPS);
                if let Some(span) = allocator.span() {
                    space
                        .lock()
                        .push(span as f64 / working.peak_live_bytes() as f64);
                }
                ns
            })
        }
        "L2" => Box::new(move || per_op(lin::l2(&allocator, STEPS), STEPS)),
        other => unreachable!("no workload {other}"),
    }
}

/// T1/T2 runs: the first row is ours, as in the other workloads.
#[cfg(feature = "wasmtime")]
fn wasm_runs(workload: &str) -> Vec<(&'static str, Run)> {
    use slotarena_bench::wasm::{Shared, Surrealism};
    const VALUES: u64 = 20_000;
    const ROUNDS: u32 = 20_000;
    match workload {
        "T1" => {
            let (mut paused, mut copied, mut exports) =
                (Shared::start(), Shared::start(), Surrealism::start());
            vec![
                (
                    "(b) GuestController, slice while paused",
                    Box::new(move || {
                        let ns = per_op(paused.t1_paused(VALUES), VALUES);
                        assert_eq!(paused.leaked_bytes(), 0);
                        ns
                    }),
                ),
                (
                    "(b) GuestController, atomic copy",
                    Box::new(move || {
                        let ns = per_op(copied.t1_copied(VALUES), VALUES);
                        assert_eq!(copied.leaked_bytes(), 0);
                        ns
                    }),
                ),
                (
                    "(a) guest's __sr_alloc/free, std allocator",
                    Box::new(move || per_op(exports.t1(VALUES), VALUES)),
                ),
            ]
        }
        "T2" => {
            let (mut host, mut std_alloc) = (Shared::start(), Surrealism::start());
            vec![
                (
                    "host-import allocator",
                    Box::new(move || {
                        let ns = per_op(host.churn(ROUNDS), u64::from(ROUNDS));
                        assert_eq!(host.leaked_bytes(), 0);
                        ns
                    }),
                ),
                (
                    "std allocator (dlmalloc)",
                    Box::new(move || per_op(std_alloc.churn(ROUNDS), u64::from(ROUNDS))),
                ),
            ]
        }
        other => unreachable!("no workload {other}"),
    }
}

#[cfg(not(feature = "wasmtime"))]
fn wasm_runs(_: &str) -> Vec<(&'static str, Run)> {
    unreachable!("T1 and T2 are listed only with feature wasmtime")
}

struct Stats {
    median: f64,
    min: f64,
    max: f64,
}

fn stats(mut samples: Vec<f64>) -> Stats {
    samples.sort_by(f64::total_cmp);
    Stats {
        median: samples[samples.len() / 2],
        min: samples[0],
        max: samples[samples.len() - 1],
    }
}

fn main() {
    let repetitions: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(11);
    let only: Vec<String> = std::env::args().skip(2).collect();
    let probe = two_thread_probe();
    println!(
        "Two-thread compute speedup on this machine: {probe:.2}× (2.00 = two cores fully in parallel)."
    );
    if probe < 1.6 {
        println!("**The two threads did not run fully in parallel: read W3–W5 and L2 with care.**");
    }
    println!();
    println!(
        "`cargo run --release -p slotarena-bench --bin bench_report -- {repetitions}`: median ns per operation"
    );
    println!(
        "(per thread for two-thread workloads), min–max over {repetitions} interleaved repetitions."
    );
    println!();
    println!(
        "| workload | implementation | median ns/op (min–max) | manager ÷ this | SlotArena ÷ this | pinned ÷ this | span ÷ peak live |"
    );
    println!("|---|---|---|---|---|---|---|");

    let managers = ["W1", "W2", "W3", "W4", "W5", "W6"];
    let mut titles = vec![
        ("W1", "W1 store+read+free, 1 thread"),
        ("W2", "W2 random reads, 1 thread"),
        ("W3", "W3 store+read+free, 2 threads"),
        ("W4", "W4 reads + 1% writes, 2 threads"),
        ("W5", "W5 producer→consumer handoff"),
        ("W6", "W6 hot reads: 8 values, 0.1% writes, 2 threads"),
        ("L1", "L1 free+alloc, 256 live, 1 thread"),
        ("L2", "L2 free+alloc, 256 live each, 2 threads"),
    ];
    if cfg!(feature = "wasmtime") {
        titles.push(("T1", "T1 1 KiB value host→guest, guest reads+frees"));
        titles.push(("T2", "T2 guest Vec/String churn, per round"));
    }
    for (workload, title) in titles {
        if !only.is_empty() && !only.iter().any(|w| w == workload) {
            continue;
        }
        let space: Vec<_> = (0..4)
            .map(|_| Arc::new(parking_lot::Mutex::new(Vec::new())))
            .collect();
        let mut runs: Vec<(&str, Run)> = if workload.starts_with('T') {
            wasm_runs(workload)
        } else if managers.contains(&workload) {
            let mut runs: Vec<(&str, Run)> = vec![
                (Ours::NAME, slot_runs::<Ours>(workload)),
                (Arena::NAME, slot_runs::<Arena>(workload)),
            ];
            if workload == "W6" {
                runs.push((slots::PINNED, pinned_run()));
            }
            if workload == "W5" {
                runs.push((slots::CHANNEL_ONLY, channel_only_run()));
            }
            runs.extend::<[(&str, Run); 5]>([
                (LimenHeader::NAME, slot_runs::<LimenHeader>(workload)),
                (LimenBare::NAME, slot_runs::<LimenBare>(workload)),
                (Sharded::NAME, slot_runs::<Sharded>(workload)),
                (MutexSlab::NAME, slot_runs::<MutexSlab>(workload)),
                (Dash::NAME, slot_runs::<Dash>(workload)),
            ]);
            runs
        } else {
            vec![
                (
                    lin::Ours::NAME,
                    linear_runs::<lin::Ours>(workload, space[0].clone()),
                ),
                (
                    lin::OffsetAllocator::NAME,
                    linear_runs::<lin::OffsetAllocator>(workload, space[1].clone()),
                ),
                (
                    lin::Talc::NAME,
                    linear_runs::<lin::Talc>(workload, space[2].clone()),
                ),
                (
                    lin::System::NAME,
                    linear_runs::<lin::System>(workload, space[3].clone()),
                ),
            ]
        };
        for (_, run) in &mut runs {
            run(); // warm-up
        }
        let mut samples = vec![Vec::new(); runs.len()];
        for rep in 0..repetitions {
            // Rotate the order so no implementation always runs first.
            for k in 0..runs.len() {
                let i = (rep + k) % runs.len();
                samples[i].push((runs[i].1)());
            }
        }
        let results: Vec<Stats> = samples.into_iter().map(stats).collect();
        let ours = results[0].median;
        // The arena's own row, where the workload has one.
        let median_of = |wanted: &str| {
            runs.iter()
                .position(|(name, _)| *name == wanted)
                .map(|i| results[i].median)
        };
        let (arena, pinned) = (median_of(Arena::NAME), median_of(slots::PINNED));
        for (i, ((name, _), result)) in runs.iter().zip(&results).enumerate() {
            let ratio = |of: f64| format!("{:.2}×", of / result.median);
            let arena_ratio = arena.map_or("—".to_string(), ratio);
            let pinned_ratio = pinned.map_or("—".to_string(), ratio);
            let ratio = ratio(ours);
            let span = space
                .get(i)
                .map(|s| s.lock().clone())
                .filter(|s| !s.is_empty());
            let span = span.map_or("—".to_string(), |s| format!("{:.2}", stats(s).median));
            println!(
                "| {title} | {name} | {:.1} ({:.1}–{:.1}) | {ratio} | {arena_ratio} | {pinned_ratio} | {span} |",
                result.median, result.min, result.max
            );
        }
    }
}
