//! Host copies into and out of a guest memory while a guest writes the
//! same bytes: plain threads stand in for the guest, so Miri can check
//! these (`.ci/miri.sh`) where it cannot run wasmtime.

use std::sync::atomic::Ordering;
use std::thread;

use slotarena::linear::LinearMemoryError;
use slotarena::wasm::GuestMemory;

const LEN: usize = 192;
/// Rounds of racing; few under Miri, which runs each access one by one.
const ROUNDS: usize = if cfg!(miri) { 4 } else { 2000 };

/// The stand-in guest's store: the chunks the host's copies use (64
/// bytes from the allocation's start), so the two sides race with atomic
/// accesses of one shape, as real guest stores are single instructions.
fn guest_store(at: *mut u8, byte: u8) {
    for chunk in 0..LEN / 64 {
        // SAFETY: `at..at + LEN` is a live allocation of the guest memory,
        // which stays mapped while the test holds a handle; every access to
        // it during the race is one of these stores or a host copy, all
        // byte-wise atomic of the same 64-byte chunks.
        unsafe {
            atomic_memcpy::atomic_store(
                at.wrapping_add(chunk * 64).cast::<[u8; 64]>(),
                [byte; 64],
                Ordering::Relaxed,
            );
        }
    }
}

/// Where the stand-in guest's code finds its bytes.
struct GuestPtr(*mut u8);

// SAFETY: the pointer is only used by `guest_store`, whose accesses are
// atomic; the memory it points into is shared by design.
unsafe impl Send for GuestPtr {}

#[test]
fn host_copies_race_a_writing_guest_soundly() {
    let memory = GuestMemory::new(1, 1).unwrap();
    let mut host = memory.controller();
    let ptr = host.transfer(&[1; LEN]).unwrap();
    let at = GuestPtr(memory.base_ptr().wrapping_add(ptr as usize));
    let guest = thread::spawn(move || {
        let at = at;
        for round in 0..ROUNDS {
            guest_store(at.0, if round % 2 == 0 { 2 } else { 3 });
        }
    });
    let mut seen = [0u8; LEN];
    for _ in 0..ROUNDS {
        host.read(ptr, &mut seen).unwrap();
        // Torn between writers, perhaps, but only ever bytes someone wrote.
        assert!(seen.iter().all(|byte| (1..=4).contains(byte)), "{seen:?}");
        host.write(ptr, &[4; LEN]).unwrap();
    }
    guest.join().unwrap();
    host.read(ptr, &mut seen).unwrap();
    assert!(seen.iter().all(|byte| (2..=4).contains(byte)), "{seen:?}");
    host.free(ptr, LEN as u32).unwrap();
    assert_eq!(memory.allocated_bytes(), 0);
}

#[test]
fn host_copies_stay_inside_one_live_allocation() {
    let memory = GuestMemory::new(1, 1).unwrap();
    let mut host = memory.controller();
    let ptr = host.transfer(b"twelve bytes").unwrap();
    let mut out = [0u8; 13];
    assert_eq!(
        host.read(ptr, &mut out),
        Err(LinearMemoryError::OutOfBounds)
    );
    assert_eq!(
        host.write(ptr + 1, b"twelve bytes"),
        Err(LinearMemoryError::OutOfBounds)
    );
    assert_eq!(host.write(0, b"x"), Err(LinearMemoryError::UnknownPointer));
    assert_eq!(
        host.write(u32::MAX, b"x"),
        Err(LinearMemoryError::UnknownPointer)
    );
    // A sub-range and the empty range at the end are fine.
    host.write(ptr + 7, b"BYTES").unwrap();
    host.read(ptr + 12, &mut []).unwrap();
    assert_eq!(host.read_vec(ptr, 12).unwrap(), b"twelve BYTES");
    host.free(ptr, 12).unwrap();
    assert_eq!(
        host.read(ptr, &mut out[..1]),
        Err(LinearMemoryError::UnknownPointer)
    );
    assert_eq!(host.transfer(&[]), Err(LinearMemoryError::ZeroLength));
}

#[test]
fn handles_copy_into_their_own_allocations_from_many_threads() {
    let memory = GuestMemory::new(1, 4).unwrap();
    let threads: Vec<_> = (0..4u8)
        .map(|id| {
            let memory = memory.clone();
            thread::spawn(move || {
                let mut host = memory.controller();
                for round in 0..ROUNDS.min(200) {
                    let value = [id.wrapping_mul(31).wrapping_add(round as u8); 100];
                    let ptr = host.transfer(&value).unwrap();
                    assert_eq!(host.read_vec(ptr, 100).unwrap(), value);
                    host.free(ptr, 100).unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(memory.allocated_bytes(), 0);
}
