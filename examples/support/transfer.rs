//! surrealism's `Transfer` shapes between host threads and a guest: a
//! value serialized with surrealism-types' own `Serializable`, laid out as
//! its `Transfer` does (`[len: u32 LE][len bytes]` in one block of
//! `4 + len` bytes), and received back the way its `receive` does (read the
//! prefix, read the bytes, free `4 + len`, deserialize).
//!
//! surrealism's own `AsyncTransfer` writes through `mut_mem`, a `&mut [u8]`
//! into the memory; a host thread must not hold one while a guest may run
//! on the same memory (it can write any byte), so these write and read by
//! [`GuestController`]'s byte-wise atomic copies instead, which stay sound
//! under a racing guest. The layout is the same.

use std::error::Error;

use slotarena::wasm::GuestController;
use surrealism_types::serialize::{Serializable, Serialized};

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

/// Values in the shapes surrealism passes: a string, a tuple, a list, an
/// option.
#[derive(Debug, Clone, PartialEq)]
pub enum Typed {
    Text(String),
    Pair((String, i64)),
    List(Vec<String>),
    Maybe(Option<f64>),
}

impl Typed {
    /// The `i`-th value a host thread sends.
    pub fn nth(thread: usize, i: usize) -> Typed {
        match i % 4 {
            0 => Typed::Text(format!(
                "text {i} of thread {thread}: {}",
                "é".repeat(i % 50)
            )),
            1 => Typed::Pair((format!("pair {i}"), -(i as i64) * 1_000_003)),
            2 => Typed::List((0..i % 9).map(|n| format!("item {n} of {i}")).collect()),
            _ => Typed::Maybe((!i.is_multiple_of(8)).then_some(i as f64 / 7.0)),
        }
    }

    /// Copies the value into a new block of the guest's memory, in
    /// surrealism's `Transfer` layout.
    pub fn transfer(&self, host: &mut GuestController) -> Result<u32> {
        let Serialized(bytes) = match self.clone() {
            Typed::Text(value) => value.serialize()?,
            Typed::Pair(value) => value.serialize()?,
            Typed::List(value) => value.serialize()?,
            Typed::Maybe(value) => value.serialize()?,
        };
        let mut block = Vec::with_capacity(4 + bytes.len());
        block.extend_from_slice(&u32::try_from(bytes.len())?.to_le_bytes());
        block.extend_from_slice(&bytes);
        Ok(host.transfer(&block)?)
    }

    /// Receives a value of this one's type from `ptr` (a block in the
    /// `Transfer` layout), freeing its block.
    pub fn receive_like(&self, host: &mut GuestController, ptr: u32) -> Result<Typed> {
        let mut prefix = [0u8; 4];
        host.read(ptr, &mut prefix)?;
        let len = u32::from_le_bytes(prefix);
        let data = if len == 0 {
            Vec::new()
        } else {
            host.read_vec(ptr + 4, len)?
        };
        let data = Serialized(data.into());
        host.free(ptr, 4 + len)?;
        Ok(match self {
            Typed::Text(_) => Typed::Text(String::deserialize(data)?),
            Typed::Pair(_) => Typed::Pair(<(String, i64)>::deserialize(data)?),
            Typed::List(_) => Typed::List(Vec::deserialize(data)?),
            Typed::Maybe(_) => Typed::Maybe(Option::deserialize(data)?),
        })
    }
}
