//! T1 or T2 alone, for `perf record` and instruction counts:
//! `target/release/wasm_profile [values] [paused|copied|exports|churn|churn-std]`
//! (20 000 values through our controller, written while the guest is
//! paused, by default; `churn` is T2's guest churn on the host-import
//! allocator, `churn-std` on the guest's own, for as many rounds). Subtract a run with fewer values to drop the
//! set-up (building and compiling the guest).

use slotarena_bench::wasm::{Shared, Surrealism};

fn main() {
    let mut args = std::env::args().skip(1);
    let values = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let elapsed = match args.next().as_deref().unwrap_or("paused") {
        "copied" => Shared::start().t1_copied(values),
        "exports" => Surrealism::start().t1(values),
        "churn" => Shared::start().churn(values as u32),
        "churn-std" => Surrealism::start().churn(values as u32),
        _ => Shared::start().t1_paused(values),
    };
    println!(
        "{:.1} ns per value",
        elapsed.as_nanos() as f64 / values as f64
    );
}
