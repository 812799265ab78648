//! [`MessageToken`]: the small `Copy` handle that pipeline stages pass around.

use core::cmp::Ordering;
use core::fmt;
use core::hash::{Hash, Hasher};
use core::num::NonZeroU64;

/// What a token stores: its bits with the index half flipped, so that
/// `Option<MessageToken>` can use the one pattern no token has (zero) and
/// stays 8 bytes. Zero is the bits of the invalid index `u32::MAX` at
/// generation 0, which [`MessageToken::from_bits`] reads as
/// [`MessageToken::INVALID`].
const FLIP: u64 = u32::MAX as u64;

/// Every slot index an arena may have fits in these bits (an arena's
/// capacity is far below 2^31), so an index masked by them is its own.
#[cfg(feature = "std")]
const ARENA_INDEXES: u32 = u32::MAX >> 1;

/// A generational key naming one message in a memory manager.
///
/// A token packs a slot index (low 32 bits) and the slot's generation at the
/// time the message was stored (high 32 bits) into one `u64`. When a slot is
/// freed its generation moves on, so a token kept past `free` does not reach
/// the message stored in that slot next: managers answer
/// [`MemoryError::NotAllocated`](crate::MemoryError::NotAllocated) while the
/// slot is empty and [`MemoryError::StaleToken`](crate::MemoryError::StaleToken)
/// once it holds a newer message. The generation has 32 bits, and a slot
/// whose generation would wrap is retired instead of reused, so an old
/// token never matches again.
///
/// Tokens are plain data, not capabilities: copying one does not keep the
/// message alive, and a token is checked on every use, but any bits that
/// name a live slot and its current generation reach that message: a token
/// built with [`from_bits`](Self::from_bits) or [`new`](Self::new), or one
/// that another manager handed out.
///
/// # Examples
///
/// ```
/// use slotarena::MessageToken;
///
/// let token = MessageToken::new(7, 3);
/// assert_eq!(token.index(), 7);
/// assert_eq!(token.generation(), 3);
/// assert_eq!(MessageToken::from_bits(token.to_bits()), token);
/// assert!(!MessageToken::INVALID.is_valid());
/// ```
///
/// `Option<MessageToken>` is 8 bytes too: no token is all zeros inside.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(transparent)]
pub struct MessageToken(NonZeroU64);

impl MessageToken {
    /// A token that no manager ever hands out; every method answers
    /// [`MemoryError::BadToken`](crate::MemoryError::BadToken) for it.
    pub const INVALID: MessageToken = match NonZeroU64::new(u64::MAX ^ FLIP) {
        Some(inner) => MessageToken(inner),
        None => unreachable!(),
    };

    /// The largest slot index a token can name. Index `u32::MAX` is reserved
    /// so that [`INVALID`](Self::INVALID) is never a real slot.
    pub const MAX_INDEX: usize = (u32::MAX - 1) as usize;

    /// Builds a token from a slot index and a generation.
    ///
    /// Managers build tokens; users normally only copy them. An index above
    /// [`MAX_INDEX`](Self::MAX_INDEX) yields [`INVALID`](Self::INVALID).
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::MessageToken;
    ///
    /// const FIRST: MessageToken = MessageToken::new(0, 0);
    /// assert_eq!((FIRST.index(), FIRST.generation()), (0, 0));
    /// assert_eq!(MessageToken::new(u32::MAX, 5), MessageToken::INVALID);
    /// ```
    #[inline]
    pub const fn new(index: u32, generation: u32) -> MessageToken {
        if index == u32::MAX {
            return MessageToken::INVALID;
        }
        MessageToken::stored(((generation as u64) << 32) | index as u64)
    }

    /// [`new`](Self::new) for an arena, whose slot indexes all fit in
    /// [`ARENA_INDEXES`] (far below [`MAX_INDEX`](Self::MAX_INDEX)):
    /// without `new`'s test of the index, which every insert would pay for.
    #[cfg(feature = "std")]
    #[inline]
    pub(crate) const fn of_slot(index: u32, generation: u32) -> MessageToken {
        debug_assert!(index <= ARENA_INDEXES);
        // A no-op on every arena index, which lets the compiler see that
        // the bits are not the one pattern with no token and drop
        // `stored`'s test from every insert.
        let index = index & ARENA_INDEXES;
        MessageToken::stored(((generation as u64) << 32) | index as u64)
    }

    /// The token of `bits`, which must not be the one pattern with no
    /// token (index `u32::MAX`, generation 0); that reads as `INVALID`.
    #[inline]
    const fn stored(bits: u64) -> MessageToken {
        match NonZeroU64::new(bits ^ FLIP) {
            Some(inner) => MessageToken(inner),
            None => MessageToken::INVALID,
        }
    }

    /// The slot index this token names.
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::{MemoryManager, Message, MessageHeader, StaticMemoryManager};
    ///
    /// let mut manager = StaticMemoryManager::<u8, 4>::new();
    /// let first = manager.store(Message::new(MessageHeader::empty(), 1)).unwrap();
    /// let second = manager.store(Message::new(MessageHeader::empty(), 2)).unwrap();
    /// assert_ne!(first.index(), second.index());
    /// ```
    #[inline]
    pub const fn index(self) -> usize {
        self.to_bits() as u32 as usize
    }

    /// The generation of the slot when the message was stored.
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::{MemoryManager, Message, MessageHeader, StaticMemoryManager};
    ///
    /// let mut manager = StaticMemoryManager::<u8, 1>::new();
    /// let old = manager.store(Message::new(MessageHeader::empty(), 1)).unwrap();
    /// manager.free(old).unwrap();
    /// let new = manager.store(Message::new(MessageHeader::empty(), 2)).unwrap();
    /// // The same slot, a newer generation: `old` can never reach `2`.
    /// assert_eq!(new.index(), old.index());
    /// assert_ne!(new.generation(), old.generation());
    /// ```
    #[inline]
    pub const fn generation(self) -> u32 {
        (self.to_bits() >> 32) as u32
    }

    /// The raw bits, for sending a token through an integer-only channel.
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::MessageToken;
    ///
    /// let token = MessageToken::new(3, 1);
    /// assert_eq!(token.to_bits(), (1 << 32) | 3);
    /// ```
    #[inline]
    pub const fn to_bits(self) -> u64 {
        self.0.get() ^ FLIP
    }

    /// Rebuilds a token from [`to_bits`](Self::to_bits). Any `u64` is
    /// accepted and checked on every use like any other token; bits that
    /// happen to name a live message reach it (tokens are not capabilities).
    /// `from_bits(t.to_bits()) == t` for every token; the one `u64` that is
    /// no token's bits, index `u32::MAX` at generation 0 (`0xffff_ffff`),
    /// reads as [`INVALID`](Self::INVALID), which it means anyway.
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::{MemoryError, MemoryManager, MessageToken, StaticMemoryManager};
    ///
    /// let manager = StaticMemoryManager::<u8, 4>::new();
    /// let forged = MessageToken::from_bits(0xdead_beef);
    /// assert_eq!(manager.read(forged).err(), Some(MemoryError::BadToken));
    /// ```
    ///
    /// ```
    /// # #[cfg(feature = "std")] {
    /// use slotarena::{MemoryError, MessageToken, SlotArena};
    ///
    /// let arena = SlotArena::new(4);
    /// let token = arena.insert("first").unwrap();
    /// let copy = MessageToken::from_bits(token.to_bits());
    /// assert_eq!(*arena.get(copy).unwrap(), "first");
    /// // A generation the slot never reached: never handed out.
    /// let forged = MessageToken::from_bits(token.to_bits() + (1 << 32));
    /// assert_eq!(arena.get(forged).err(), Some(MemoryError::BadToken));
    /// arena.remove(token).unwrap();
    /// let next = arena.insert("second").unwrap();
    /// assert_eq!(next, forged); // until now
    /// assert_eq!(arena.get(copy).err(), Some(MemoryError::StaleToken));
    /// # }
    /// ```
    #[inline]
    pub const fn from_bits(bits: u64) -> MessageToken {
        MessageToken::stored(bits)
    }

    /// `false` only for tokens whose index is the reserved `u32::MAX`
    /// (such as [`INVALID`](Self::INVALID)). A valid token may still name
    /// no message of a given manager; only the manager can tell.
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::MessageToken;
    ///
    /// assert!(MessageToken::new(0, 0).is_valid());
    /// assert!(!MessageToken::INVALID.is_valid());
    /// assert!(!MessageToken::default().is_valid());
    /// ```
    #[inline]
    pub const fn is_valid(self) -> bool {
        self.index() as u32 != u32::MAX
    }
}

/// Feature `serde`: a token is saved as its [`to_bits`](MessageToken::to_bits).
#[cfg(feature = "serde")]
impl serde::Serialize for MessageToken {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.to_bits())
    }
}

/// Feature `serde`: a token is loaded with [`from_bits`](MessageToken::from_bits).
#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for MessageToken {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <u64 as serde::Deserialize>::deserialize(deserializer).map(MessageToken::from_bits)
    }
}

/// Hashes [`to_bits`](MessageToken::to_bits).
impl Hash for MessageToken {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.to_bits().hash(state);
    }
}

/// Orders by [`to_bits`](MessageToken::to_bits): generation first, then index.
impl Ord for MessageToken {
    fn cmp(&self, other: &Self) -> Ordering {
        self.to_bits().cmp(&other.to_bits())
    }
}

impl PartialOrd for MessageToken {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Default for MessageToken {
    /// [`MessageToken::INVALID`].
    fn default() -> Self {
        MessageToken::INVALID
    }
}

impl fmt::Debug for MessageToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_valid() {
            write!(f, "MessageToken({}v{})", self.index(), self.generation())
        } else {
            f.write_str("MessageToken(INVALID)")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::format;

    proptest! {
        #[test]
        fn bits_round_trip(bits in any::<u64>()) {
            let token = MessageToken::from_bits(bits);
            prop_assert_eq!(MessageToken::from_bits(token.to_bits()), token);
            if bits == u64::from(u32::MAX) {
                prop_assert_eq!(token, MessageToken::INVALID);
                return Ok(());
            }
            prop_assert_eq!(token.to_bits(), bits);
            prop_assert_eq!(MessageToken::new(token.index() as u32, token.generation()).to_bits() == bits, token.is_valid());
        }

        #[cfg(feature = "std")]
        #[test]
        fn an_arena_index_makes_the_token_new_makes(
            index in 0..=ARENA_INDEXES,
            generation in any::<u32>(),
        ) {
            prop_assert_eq!(
                MessageToken::of_slot(index, generation),
                MessageToken::new(index, generation)
            );
        }
    }

    #[test]
    fn token_is_eight_bytes_with_or_without_option() {
        assert_eq!(core::mem::size_of::<MessageToken>(), 8);
        assert_eq!(core::mem::size_of::<Option<MessageToken>>(), 8);
    }

    #[test]
    fn the_bits_no_token_has_read_as_invalid_and_order_follows_the_bits() {
        assert_eq!(MessageToken::from_bits(0xffff_ffff), MessageToken::INVALID);
        assert_eq!(MessageToken::INVALID.to_bits(), u64::MAX);
        assert_eq!(MessageToken::from_bits(0).to_bits(), 0);
        assert!(MessageToken::new(5, 0) < MessageToken::new(6, 0));
        assert!(MessageToken::new(6, 0) < MessageToken::new(0, 1));
        assert!(MessageToken::new(0, 1) < MessageToken::INVALID);
    }

    #[test]
    fn reserved_index_yields_invalid() {
        assert_eq!(MessageToken::new(u32::MAX, 0), MessageToken::INVALID);
        assert_eq!(
            format!("{:?}", MessageToken::INVALID),
            "MessageToken(INVALID)"
        );
        assert_eq!(
            format!("{:?}", MessageToken::new(4, 2)),
            "MessageToken(4v2)"
        );
    }
}
