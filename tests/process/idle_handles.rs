//! Issue 19's defect 5 scenario, shared by the tests that free its blocks
//! in different ways (`#[path = "process/idle_handles.rs"] mod
//! idle_handles;`, beside `resident`): [`HANDLES`] handles each write one
//! large block and one small block of every size class, everything is
//! freed, and the handles stay alive and idle. Freed pages must go back to
//! the OS then, not only once the handles drop.

use slotarena::linear::{LinearMemoryController, SharedLinearMemory};

use crate::resident::{MIB, resident_bytes};

/// Handles in the scenario.
pub const HANDLES: usize = 400;

/// Every handle's blocks, `(ptr, len)`, in handle order.
pub type Blocks = Vec<Vec<(u32, u32)>>;

/// Runs the scenario, with `free_all` freeing every block of `Blocks`
/// (through whichever handles it likes), and checks the resident sizes.
pub fn check_idle_handles_keep_nothing(
    free_all: impl FnOnce(&mut [LinearMemoryController], Blocks),
) {
    let memory = SharedLinearMemory::new(1, 4096).unwrap();
    let mut handles: Vec<_> = (0..HANDLES).map(|_| memory.controller()).collect();
    let before = resident_bytes();
    let mut live = Vec::new();
    for handle in &mut handles {
        // One large block and one small block of every size class, written.
        let lens = std::iter::once(60 << 10)
            .chain((8..=64).step_by(8))
            .chain([80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512]);
        let mut mine = Vec::new();
        for len in lens {
            let ptr = handle.alloc(len).unwrap();
            handle.mut_mem(ptr, len).unwrap().fill(0xa5);
            mine.push((ptr, len));
        }
        // Another handle may free the last block written.
        handle.release();
        live.push(mine);
    }
    let peak = resident_bytes();
    free_all(&mut handles, live);
    assert_eq!(memory.allocated_bytes(), 0);
    let idle = resident_bytes();
    drop(handles);
    let dropped = resident_bytes();
    println!(
        "resident: {:.1} MiB before, {:.1} MiB live, {:.1} MiB freed with {HANDLES} idle \
         handles, {:.1} MiB once they dropped",
        before as f64 / MIB,
        peak as f64 / MIB,
        idle as f64 / MIB,
        dropped as f64 / MIB,
    );
    assert!(peak >= before + (20 << 20), "the blocks were resident");
    // Idle handles hold no more than dropped ones would (the heap keeps
    // its bookkeeping either way, and the pool up to 2 MiB of wholly free
    // pages for reuse).
    assert!(
        idle < dropped + (1 << 20),
        "idle handles kept {:.1} MiB more resident than dropped ones",
        (idle - dropped) as f64 / MIB
    );
    assert!(
        idle - before < (peak - before) / 4,
        "{:.1} of {:.1} MiB stayed resident",
        (idle - before) as f64 / MIB,
        (peak - before) as f64 / MIB
    );
}
