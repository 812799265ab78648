//! [`MemoryError`]: what a memory manager answers when it cannot do what was asked.

/// Why a memory-manager operation was refused.
///
/// Every refusal leaves the manager exactly as it was: no slot changes, no
/// message is dropped (except a message handed to a `store` that failed,
/// which `store` drops or hands back, as its docs say).
///
/// When several causes apply, the first in this list wins: `BadToken`,
/// `NotAllocated`, `StaleToken`, `AlreadyBorrowed`, `BorrowActive`,
/// `QueueOwned`, `Poisoned`, `TooManyReaders`. `NoFreeSlots` only comes
/// from `store`.
///
/// The enum is `#[non_exhaustive]`: a `match` needs a wildcard arm.
///
/// # Examples
///
/// ```
/// use slotarena::{MemoryError, MemoryManager, Message, MessageHeader, StaticMemoryManager};
///
/// let mut manager = StaticMemoryManager::<u32, 1>::new();
/// let token = manager.store(Message::new(MessageHeader::empty(), 1)).unwrap();
/// let refused = manager.store(Message::new(MessageHeader::empty(), 2)).unwrap_err();
/// assert_eq!(refused, MemoryError::NoFreeSlots);
///
/// manager.free(token).unwrap();
/// match manager.read(token) {
///     Ok(_) => unreachable!("the message was freed"),
///     Err(MemoryError::NotAllocated | MemoryError::StaleToken) => {} // drop the token
///     Err(other) => panic!("unexpected: {other}"),
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum MemoryError {
    /// Every slot holds a message and the manager cannot grow further.
    #[error("no free slot: the manager is full; free a message or build it with a larger capacity")]
    NoFreeSlots,
    /// The token's index is out of range or reserved (such as
    /// [`MessageToken::INVALID`](crate::MessageToken::INVALID)).
    #[error("token does not name a slot of this manager; use a token this manager returned")]
    BadToken,
    /// The token names a slot that was freed and now holds a newer message.
    #[error("token names a slot that was freed and reused; drop the token, its message is gone")]
    StaleToken,
    /// The token names an empty slot: its message was already freed or taken.
    #[error("slot is empty: the message was already freed or taken; drop the token")]
    NotAllocated,
    /// A non-blocking borrow met an incompatible borrow of the same message.
    #[error("message is borrowed incompatibly right now; retry later or use the blocking form")]
    AlreadyBorrowed,
    /// A free or take met a live guard on the message.
    #[error("message has a live guard; drop every guard on it before freeing it")]
    BorrowActive,
    /// A free met outstanding queue shares (see `retain_shared`).
    #[error("message is still shared by queues; release every share instead of freeing it")]
    QueueOwned,
    /// A release was asked of a message that has no outstanding share.
    #[error("message has no outstanding share to release; free it instead")]
    NotShared,
    /// Retaining would overflow the message's share count.
    #[error("message already has the maximum number of shares; release some first")]
    TooManyShares,
    /// The value already has the most read guards one value can have at
    /// once ([`SlotArena::MAX_READERS`](crate::SlotArena::MAX_READERS));
    /// a blocking read answers this too, since only a guard's drop makes
    /// room. Comes after the token errors and `Poisoned`.
    #[error("value has the maximum number of read guards; drop one and retry")]
    TooManyReaders,
    /// A thread panicked while it held a write guard on this message, so it
    /// may be half-updated. Free or take the message to reuse the slot
    /// ([`SlotArena::take`](crate::SlotArena::take) hands the value back,
    /// inside [`TakeError::Poisoned`](crate::TakeError::Poisoned)).
    #[error(
        "message is poisoned: a writer panicked while holding it; free or take it to reuse the slot"
    )]
    Poisoned,
}
