//! Review R6: freed pages go back to the OS while idle handles live, when
//! every block is freed through another handle on another thread than the
//! one that allocated it (spans pinned by the allocators, frees counted
//! elsewhere). Alone in its binary, so no other test moves the resident
//! size. Result: see the test's doc.
#![cfg(all(target_os = "linux", not(miri)))]

#[path = "process/resident.rs"]
mod resident;

use std::thread;

use resident::{MIB, resident_bytes};
use slotarena::linear::SharedLinearMemory;

/// As `linear_rss_idle`, with the frees through the next handle, on a
/// thread of its own. Result: PASSED on r6-review.
#[test]
fn r6_cross_handle_frees_leave_no_freed_page_resident_with_idle_handles() {
    const HANDLES: usize = 400;
    let memory = SharedLinearMemory::new(1, 4096).unwrap();
    let mut handles: Vec<_> = (0..HANDLES).map(|_| memory.controller()).collect();
    let before = resident_bytes();
    let mut live = Vec::new();
    for handle in &mut handles {
        let lens = std::iter::once(60 << 10)
            .chain((8..=64).step_by(8))
            .chain([80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512]);
        let mut mine = Vec::new();
        for len in lens {
            let ptr = handle.alloc(len).unwrap();
            handle.mut_mem(ptr, len).unwrap().fill(0xa5);
            mine.push((ptr, len));
        }
        handle.release();
        live.push(mine);
    }
    let peak = resident_bytes();
    live.rotate_left(1);
    thread::scope(|s| {
        for (chunk, blocks) in handles.chunks_mut(100).zip(live.chunks(100)) {
            s.spawn(move || {
                for (handle, mine) in chunk.iter_mut().zip(blocks) {
                    for &(ptr, len) in mine {
                        handle.free(ptr, len).unwrap();
                    }
                }
            });
        }
    });
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
