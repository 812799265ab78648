//! Review R2: reproducers of defects found in an adversarial review of the
//! linear memory's clients (the wasm binding, the surrealism adapter) and
//! of its spans kept for their handles.
//! Each test failed on the code before its fix.

/// Spans kept for the handles that pin them (S4 in
/// `src/linear/allocator/spans.rs`): their granules are room that the
/// memory takes back before it grows (issue 19's rule for anything a
/// handle holds).
#[cfg(feature = "std")]
mod kept_spans {
    use slotarena::linear::{PAGE_SIZE, SharedLinearMemory};

    const GRANULE: u32 = 256;

    /// One handle churns a lone 8-byte block (its span is kept), then asks
    /// for the rest of the page: nothing is live, so nothing may grow.
    #[test]
    fn a_kept_empty_span_is_taken_back_before_the_memory_grows() {
        let memory = SharedLinearMemory::new(1, 2).unwrap();
        let mut c = memory.controller();
        let small = c.alloc(8).unwrap();
        c.free(small, 8).unwrap();
        assert_eq!(memory.allocated_bytes(), 0);
        let rest = PAGE_SIZE - GRANULE;
        let big = c.alloc(rest).unwrap();
        assert_eq!(
            memory.size_pages(),
            1,
            "grew to fit {rest} bytes though the page held nothing live"
        );
        c.free(big, rest).unwrap();
    }

    /// The same through the small path: another handle's kept span of the
    /// 8-byte class holds the only free granule a 112-byte span needs.
    #[test]
    fn a_kept_span_of_another_class_is_taken_back_before_the_memory_grows() {
        let memory = SharedLinearMemory::new(1, 2).unwrap();
        let mut filler = memory.controller();
        let big = filler.alloc(PAGE_SIZE - 2 * GRANULE).unwrap();
        let mut a = memory.controller();
        let small = a.alloc(8).unwrap(); // an 8-byte span: the last granule
        a.free(small, 8).unwrap(); // kept for `a`
        let mut b = memory.controller();
        let other = b.alloc(100).unwrap();
        assert_eq!(
            memory.size_pages(),
            1,
            "grew for a small block while a kept empty span held free room"
        );
        b.free(other, 100).unwrap();
        filler.free(big, PAGE_SIZE - 2 * GRANULE).unwrap();
    }
}

/// Host copies of guest memory (`src/wasm/mod.rs`), without wasmtime.
#[cfg(feature = "std")]
mod guest_copies {
    use slotarena::linear::LinearMemoryError;
    use slotarena::wasm::GuestMemory;

    /// A length a guest passes reached `vec![0; len]` before the claim
    /// checked it: on i686 (Miri, `.ci/miri.sh`) `read_vec(ptr, u32::MAX)`
    /// panicked with "capacity overflow" instead of answering `OutOfBounds`.
    #[test]
    fn read_vec_of_a_hostile_length_answers_an_error() {
        let memory = GuestMemory::new(1, 1).unwrap();
        let mut host = memory.controller();
        let ptr = host.alloc(8).unwrap();
        assert_eq!(
            host.read_vec(ptr, u32::MAX),
            Err(LinearMemoryError::OutOfBounds)
        );
        assert_eq!(
            host.read_vec(8, u32::MAX),
            Err(LinearMemoryError::UnknownPointer)
        );
        host.write(ptr, b"eight by").unwrap();
        assert_eq!(host.read_vec(ptr + 2, 6).unwrap(), b"ght by");
        assert_eq!(host.read_vec(ptr + 8, 0).unwrap(), b"");
        host.free(ptr, 8).unwrap();
    }
}

/// surrealism-types' own traits on our controller (`src/linear/surrealism.rs`).
#[cfg(feature = "surrealism")]
mod surrealism {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use slotarena::linear::{LinearMemoryError, PAGE_SIZE, SharedLinearMemory, WaitPolicy};
    use surrealism_types::controller::AsyncMemoryController;
    use surrealism_types::transfer::AsyncTransfer;

    fn poll_once<F: Future>(future: std::pin::Pin<&mut F>) -> Poll<F::Output> {
        future.poll(&mut Context::from_waker(Waker::noop()))
    }

    fn error<T>(answer: Poll<anyhow::Result<T>>) -> Option<LinearMemoryError> {
        match answer {
            Poll::Ready(Err(error)) => error.downcast().ok(),
            _ => None,
        }
    }

    /// `set_wait_policy(Wait)` is documented to govern "this handle's
    /// AsyncMemoryController methods", but surrealism's async `alloc` and
    /// `free` answered at once whatever the policy: surrealism's own
    /// `AsyncTransfer` into a full memory answered `OutOfMemory`
    /// ("with WaitPolicy::Wait ... Some(OutOfMemory) at once").
    #[test]
    fn async_transfer_waits_for_room_under_the_wait_policy() {
        let memory = SharedLinearMemory::new(1, 1).unwrap();
        let mut owner = memory.controller();
        let all = owner.alloc(PAGE_SIZE - 256).unwrap();
        let mut c = memory.controller().with_wait_policy(WaitPolicy::Wait);
        let controller: &mut dyn AsyncMemoryController = &mut c;
        let mut send = pin!(AsyncTransfer::transfer(String::from("hello"), controller));
        let first = poll_once(send.as_mut());
        assert!(
            first.is_pending(),
            "with WaitPolicy::Wait, a full memory answered {:?} at once",
            error(first)
        );
        owner.free(all, PAGE_SIZE - 256).unwrap();
        assert!(matches!(poll_once(send.as_mut()), Poll::Ready(Ok(_))));
    }

    /// The same for `free`: under `Wait` it awaits the end of another
    /// handle's claim instead of answering `Busy`; the default policy
    /// still answers at once.
    #[test]
    fn async_free_follows_the_wait_policy() {
        let memory = SharedLinearMemory::new(1, 1).unwrap();
        let mut owner = memory.controller();
        let ptr = owner.alloc(8).unwrap();
        owner.mut_mem(ptr, 8).unwrap();
        let mut immediate = memory.controller();
        let answer = poll_once(pin!(AsyncMemoryController::free(&mut immediate, ptr, 8)).as_mut());
        assert_eq!(error(answer), Some(LinearMemoryError::Busy));
        let mut waiting = memory.controller().with_wait_policy(WaitPolicy::Wait);
        let mut free = pin!(AsyncMemoryController::free(&mut waiting, ptr, 8));
        assert!(poll_once(free.as_mut()).is_pending());
        owner.release();
        assert!(matches!(poll_once(free.as_mut()), Poll::Ready(Ok(()))));
        assert_eq!(memory.allocated_bytes(), 0);
    }
}

/// wasmtime guests (`src/wasm/engine.rs`).
#[cfg(all(feature = "wasmtime", unix))]
mod wasm {
    use std::sync::mpsc;
    use std::thread;

    use slotarena::linear::{LinearMemoryError, PAGE_SIZE};
    use slotarena::wasm::{GuestMemories, GuestMemory};
    use wasmtime::{Config, Engine, Linker, Module, Store};

    fn bind(memories: &GuestMemories, memory: &GuestMemory, wat: &str) -> Store<()> {
        let engine = Engine::new(memories.configure(&mut Config::new())).unwrap();
        let module = Module::new(&engine, wat::parse_str(wat).unwrap()).unwrap();
        let mut store = Store::new(&engine, ());
        memories
            .instantiate(memory, &mut store, &Linker::new(&engine), &module)
            .unwrap();
        store
    }

    /// A module whose minimum is the whole 4 GiB: its own bytes end at
    /// 2^32, which `as u32` made 0, so `guest_bytes()` said "not bound" and
    /// a host freed the guest's stack and data ("left: Ok(())").
    #[test]
    fn a_guest_of_the_whole_4_gib_keeps_its_own_bytes() {
        let memories = GuestMemories::new();
        let memory = memories.memory(1, 65_536).unwrap();
        let store = bind(
            &memories,
            &memory,
            r#"(module (memory (export "memory") 65536 65536))"#,
        );
        let own = u32::MAX - 255; // all but the first 256 bytes
        assert_eq!(memory.allocated_bytes(), u64::from(own));
        assert_eq!(memory.guest_bytes(), u32::MAX);
        let mut host = memory.controller();
        assert_eq!(
            host.free(256, own),
            Err(LinearMemoryError::UnknownPointer),
            "a host freed the guest's own bytes"
        );
        drop(store);
        assert_eq!(memory.guest_bytes(), 0);
        assert_eq!(memory.allocated_bytes(), 0);
    }

    /// A host copy into the guest's own bytes holds their claim; the store
    /// that dropped meanwhile freed them with a plain `free`, which
    /// answered `Busy`, and they stayed allocated for good ("round 0: ...
    /// left: 65280").
    #[test]
    fn the_guests_own_bytes_are_freed_while_a_host_copies_into_them() {
        let memories = GuestMemories::new();
        for round in 0..50 {
            let memory = memories.memory(1, 2).unwrap();
            let store = bind(
                &memories,
                &memory,
                r#"(module (memory (export "memory") 1))"#,
            );
            let own = PAGE_SIZE - 256;
            assert_eq!(memory.allocated_bytes(), u64::from(own));
            let (copied, copied_rx) = mpsc::channel();
            let writer = {
                let memory = memory.clone();
                thread::spawn(move || {
                    let mut host = memory.controller();
                    let bytes = vec![7u8; own as usize];
                    // Copies until the store starts to go (it clears the
                    // guest's bytes first), one maybe still in flight.
                    while memory.guest_bytes() != 0 {
                        let _ = host.write(256, &bytes);
                        let _ = copied.send(());
                    }
                })
            };
            copied_rx.recv().unwrap();
            drop(store);
            writer.join().unwrap();
            assert_eq!(
                memory.allocated_bytes(),
                0,
                "round {round}: the guest's own bytes stayed allocated after its store went"
            );
        }
    }
}
