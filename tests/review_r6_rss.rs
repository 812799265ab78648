//! Review R6: freed pages go back to the OS while idle handles live, when
//! every block is freed through another handle on another thread than the
//! one that allocated it (spans pinned by the allocators, frees counted
//! elsewhere). Alone in its binary, so no other test moves the resident
//! size.
#![cfg(all(target_os = "linux", not(miri)))]

#[path = "process/idle_handles.rs"]
mod idle_handles;
#[path = "process/resident.rs"]
mod resident;

use std::thread;

use idle_handles::check_idle_handles_keep_nothing;

/// As `linear_rss_idle`, with each handle's blocks freed by the next
/// handle, 100 handles to a thread. Result: PASSED on r6-review.
#[test]
fn r6_cross_handle_frees_leave_no_freed_page_resident_with_idle_handles() {
    check_idle_handles_keep_nothing(|handles, mut live| {
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
    });
}
