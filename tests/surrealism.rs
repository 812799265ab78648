//! surrealism-types 0.1.1's own `Transfer`/`AsyncTransfer` code moving
//! values through our memory: host → guest and guest → host, on two
//! threads, one controller per call.
#![cfg(feature = "surrealism")]

use std::future::Future;
use std::pin::pin;
use std::sync::mpsc;
use std::task::{Context, Poll, Waker};
use std::thread;

use slotarena::linear::{LinearMemoryController, LinearMemoryError, SharedLinearMemory};
use surrealism_types::controller::{AsyncMemoryController, MemoryController};
use surrealism_types::transfer::{AsyncTransfer, Ptr, Transfer};

/// Runs a future that never waits (our controller's never do).
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}

/// One value of each kind the issue names.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Text(String),
    Unit,
    Int(i64),
    Uint(u64),
    List(Vec<String>),
    Numbers(Vec<i64>),
}

fn values() -> Vec<Value> {
    vec![
        Value::Text("hello, guest".into()),
        Value::Text(String::new()),
        Value::Unit,
        Value::Int(-42),
        Value::Uint(u64::MAX),
        Value::List(vec!["a".into(), String::new(), "x".repeat(3000)]),
        Value::Numbers((0..500).collect()),
        Value::List(Vec::new()),
        Value::Text("y".repeat(70_000)),
    ]
}

/// Sends with the async (host) trait through a fresh controller.
fn send_async(memory: &SharedLinearMemory, value: Value) -> u32 {
    let mut c = memory.controller();
    let controller: &mut dyn AsyncMemoryController = &mut c;
    let ptr = block_on(async move {
        match value {
            Value::Text(v) => AsyncTransfer::transfer(v, controller).await,
            Value::Unit => AsyncTransfer::transfer((), controller).await,
            Value::Int(v) => AsyncTransfer::transfer(v, controller).await,
            Value::Uint(v) => AsyncTransfer::transfer(v, controller).await,
            Value::List(v) => AsyncTransfer::transfer(v, controller).await,
            Value::Numbers(v) => AsyncTransfer::transfer(v, controller).await,
        }
    })
    .unwrap();
    *ptr
}

/// Receives with the sync (guest) trait through a fresh controller.
fn receive_sync(memory: &SharedLinearMemory, like: &Value, ptr: u32) -> Value {
    let mut c = memory.controller();
    let controller: &mut dyn MemoryController = &mut c;
    let ptr = Ptr::from(ptr);
    match like {
        Value::Text(_) => Value::Text(Transfer::receive(ptr, controller).unwrap()),
        Value::Unit => {
            <() as Transfer>::receive(ptr, controller).unwrap();
            Value::Unit
        }
        Value::Int(_) => Value::Int(Transfer::receive(ptr, controller).unwrap()),
        Value::Uint(_) => Value::Uint(Transfer::receive(ptr, controller).unwrap()),
        Value::List(_) => Value::List(Transfer::receive(ptr, controller).unwrap()),
        Value::Numbers(_) => Value::Numbers(Transfer::receive(ptr, controller).unwrap()),
    }
}

/// Sends with the sync (guest) trait through a fresh controller.
fn send_sync(memory: &SharedLinearMemory, value: Value) -> u32 {
    let mut c = memory.controller();
    let controller: &mut dyn MemoryController = &mut c;
    let ptr = match value {
        Value::Text(v) => Transfer::transfer(v, controller),
        Value::Unit => Transfer::transfer((), controller),
        Value::Int(v) => Transfer::transfer(v, controller),
        Value::Uint(v) => Transfer::transfer(v, controller),
        Value::List(v) => Transfer::transfer(v, controller),
        Value::Numbers(v) => Transfer::transfer(v, controller),
    }
    .unwrap();
    *ptr
}

/// Receives with the async (host) trait through a fresh controller.
fn receive_async(memory: &SharedLinearMemory, like: &Value, ptr: u32) -> Value {
    let mut c = memory.controller();
    let controller: &mut dyn AsyncMemoryController = &mut c;
    let ptr = Ptr::from(ptr);
    block_on(async move {
        match like {
            Value::Text(_) => Value::Text(AsyncTransfer::receive(ptr, controller).await.unwrap()),
            Value::Unit => {
                <() as AsyncTransfer>::receive(ptr, controller)
                    .await
                    .unwrap();
                Value::Unit
            }
            Value::Int(_) => Value::Int(AsyncTransfer::receive(ptr, controller).await.unwrap()),
            Value::Uint(_) => Value::Uint(AsyncTransfer::receive(ptr, controller).await.unwrap()),
            Value::List(_) => Value::List(AsyncTransfer::receive(ptr, controller).await.unwrap()),
            Value::Numbers(_) => {
                Value::Numbers(AsyncTransfer::receive(ptr, controller).await.unwrap())
            }
        }
    })
}

/// `sender` on one thread, `receiver` on another, every value `rounds` times.
fn across_threads(
    send: fn(&SharedLinearMemory, Value) -> u32,
    receive: fn(&SharedLinearMemory, &Value, u32) -> Value,
) {
    let memory = SharedLinearMemory::new(1, 64).unwrap();
    let rounds = if cfg!(miri) { 1 } else { 50 };
    let (tx, rx) = mpsc::sync_channel::<(Value, u32)>(4);
    let sender = {
        let memory = memory.clone();
        thread::spawn(move || {
            for _ in 0..rounds {
                for value in values() {
                    let ptr = send(&memory, value.clone());
                    assert_ne!(ptr, 0);
                    tx.send((value, ptr)).unwrap();
                }
            }
        })
    };
    let receiver = {
        let memory = memory.clone();
        thread::spawn(move || {
            for (value, ptr) in rx {
                assert_eq!(receive(&memory, &value, ptr), value);
            }
        })
    };
    sender.join().unwrap();
    receiver.join().unwrap();
    assert_eq!(
        memory.allocated_bytes(),
        0,
        "every received value was freed"
    );
}

#[test]
fn host_to_guest_across_threads() {
    across_threads(send_async, receive_sync);
}

#[test]
fn guest_to_host_across_threads() {
    across_threads(send_sync, receive_async);
}

#[test]
fn empty_values_free_their_four_byte_block() {
    // surrealism's receive asks for `mut_mem(ptr + 4, 0)`: the empty range
    // at the end of the block.
    let memory = SharedLinearMemory::new(1, 1).unwrap();
    for _ in 0..1000 {
        let ptr = Transfer::transfer((), &mut memory.controller()).unwrap();
        <() as Transfer>::receive(ptr, &mut memory.controller()).unwrap();
        let ptr = Transfer::transfer(String::new(), &mut memory.controller()).unwrap();
        assert_eq!(
            <String as Transfer>::receive(ptr, &mut memory.controller()).unwrap(),
            ""
        );
    }
    assert_eq!(memory.allocated_bytes(), 0);
}

#[test]
fn errors_come_back_as_linear_memory_errors() {
    let memory = SharedLinearMemory::new(1, 1).unwrap();
    let mut c = memory.controller();
    let error = MemoryController::free(&mut c, 64, 8).unwrap_err();
    assert_eq!(
        error.downcast_ref::<LinearMemoryError>(),
        Some(&LinearMemoryError::UnknownPointer)
    );
    let error = block_on(AsyncMemoryController::alloc(&mut c, 0)).unwrap_err();
    assert_eq!(
        error.downcast_ref::<LinearMemoryError>(),
        Some(&LinearMemoryError::ZeroLength)
    );
    let refused = AsyncMemoryController::mut_mem(&mut c, 64, 8).map(|bytes| bytes.len());
    assert!(refused.is_err());
}

#[test]
#[should_panic(expected = "sync MemoryController::mut_mem cannot return errors")]
fn a_refused_sync_mut_mem_panics_with_advice() {
    let memory = SharedLinearMemory::new(1, 1).unwrap();
    let mut c: LinearMemoryController = memory.controller();
    let _ = MemoryController::mut_mem(&mut c, 64, 8);
}
