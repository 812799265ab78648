//! How a slotarena token fits in limen-core's `u32` token.

use limen_core::types::MessageToken as LimenToken;

use crate::MessageToken;

/// One manager's split of limen-core's `u32` token: the slot index in the
/// low `index_bits` bits, the low bits of the slot's generation above it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Layout {
    index_bits: u32,
}

impl Layout {
    /// The layout for a manager of `capacity` slots: the fewest index bits
    /// that can hold `capacity` itself. Every slot index is below
    /// `capacity`, so the all-ones index, and with it `u32::MAX` (limen's
    /// `MessageToken::INVALID`), is never handed out.
    pub(super) const fn for_capacity(capacity: usize) -> Layout {
        let needed = usize::BITS - capacity.leading_zeros();
        Layout {
            index_bits: if needed == 0 { 1 } else { needed },
        }
    }

    /// How many generation bits a token carries.
    pub(super) const fn generation_bits(self) -> u32 {
        u32::BITS - self.index_bits
    }

    /// The generation bits a token of a value of `generation` carries.
    const fn truncate(self, generation: u32) -> u32 {
        generation & (u32::MAX >> self.index_bits)
    }

    /// The limen token for `token`, a token of an arena whose capacity
    /// this layout was made for.
    pub(super) fn pack(self, token: MessageToken) -> LimenToken {
        debug_assert!(
            token.index() < 1 << self.index_bits,
            "index {} does not fit in {} bits",
            token.index(),
            self.index_bits
        );
        let generation = self.truncate(token.generation());
        LimenToken::new((generation << self.index_bits) | token.index() as u32)
    }

    /// The slot index and the generation bits of a limen token.
    pub(super) fn unpack(self, token: LimenToken) -> (usize, u32) {
        // limen-core's `index()` is the token's whole `u32`.
        let bits = token.index() as u32;
        let index = bits & ((1 << self.index_bits) - 1);
        (index as usize, bits >> self.index_bits)
    }

    /// Whether the generation bits `bits` are ahead of every generation
    /// slot `current` has reached (`current` carries its value's
    /// generation, or for an empty slot its next value's): no token of
    /// that slot carried them yet, so a token that does was never handed
    /// out. Once the slot's generation passes the largest `bits`, every
    /// pattern has been handed out and none is ahead.
    pub(super) fn ahead(self, current: MessageToken, bits: u32) -> bool {
        debug_assert_eq!(
            self.truncate(bits),
            bits,
            "{bits:#x} is wider than the layout"
        );
        bits > current.generation()
    }

    /// Whether `current`, the token of the value in the slot right now,
    /// carries the generation bits `bits` of a limen token.
    pub(super) fn matches(self, current: MessageToken, bits: u32) -> bool {
        self.truncate(current.generation()) == bits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn index_bits_hold_the_capacity_itself() {
        let bits = |capacity| Layout::for_capacity(capacity).generation_bits();
        assert_eq!(bits(0), 31);
        assert_eq!(bits(1), 31);
        assert_eq!(bits(3), 30);
        assert_eq!(bits(4), 29);
        assert_eq!(bits(1000), 22);
        assert_eq!(bits(1024), 21);
        assert_eq!(bits(crate::SlotArena::<()>::MAX_CAPACITY), 6);
    }

    #[test]
    fn no_slot_of_the_capacity_packs_to_invalid() {
        for capacity in [1usize, 2, 3, 4, 7, 8, 1023, 1024, 1025] {
            let layout = Layout::for_capacity(capacity);
            let last = MessageToken::new(capacity as u32 - 1, u32::MAX);
            assert!(!layout.pack(last).is_invalid(), "capacity {capacity}");
            let (index, _) = layout.unpack(LimenToken::INVALID);
            assert!(index >= capacity, "capacity {capacity}");
        }
    }

    #[test]
    fn generations_alias_only_a_full_cycle_apart() {
        // The largest manager keeps 6 generation bits: a token comes back
        // to life after 64 reuses of its slot, and not before.
        let layout = Layout::for_capacity(crate::SlotArena::<()>::MAX_CAPACITY);
        assert_eq!(layout.generation_bits(), 6);
        let (_, bits) = layout.unpack(layout.pack(MessageToken::new(9, 3)));
        assert!(layout.matches(MessageToken::new(9, 3 + 64), bits));
        for later in 4..3 + 64 {
            assert!(!layout.matches(MessageToken::new(9, later), bits));
        }
    }

    proptest! {
        #[test]
        fn pack_and_unpack_round_trip(
            capacity in 1..=crate::SlotArena::<()>::MAX_CAPACITY,
            index: u32,
            generation: u32,
        ) {
            let layout = Layout::for_capacity(capacity);
            let index = index % capacity as u32;
            let token = MessageToken::new(index, generation);
            let (unpacked, bits) = layout.unpack(layout.pack(token));
            prop_assert_eq!(unpacked, index as usize);
            prop_assert!(layout.matches(token, bits));
            prop_assert!(!layout.matches(MessageToken::new(index, generation.wrapping_add(1)), bits));
        }
    }
}
