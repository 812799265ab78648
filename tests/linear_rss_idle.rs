//! Issue 19, defect 5: freed pages go back to the OS while the handles
//! that used them stay alive and idle. Alone in its own test binary, so
//! no other test moves the process's resident size.
#![cfg(all(target_os = "linux", not(miri)))]

#[path = "process/resident.rs"]
mod resident;

use resident::{MIB, resident_bytes};
use slotarena::linear::SharedLinearMemory;

/// Before the fix, every handle kept its empty spans pinned, and they kept
/// the pages they sat on (and so most of the 60 KiB blocks' pages, which
/// they split) resident until the handles dropped: 36.3 MiB idle against
/// 7.5 MiB once dropped, here.
#[test]
fn idle_handles_hold_no_freed_page_resident() {
    const HANDLES: usize = 400;
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
        live.push(mine);
    }
    let peak = resident_bytes();
    for (handle, mine) in handles.iter_mut().zip(live) {
        for (ptr, len) in mine {
            handle.free(ptr, len).unwrap();
        }
    }
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
