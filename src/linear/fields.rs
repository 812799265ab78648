//! The lifecycle fields of a span's small blocks: a few bits per block,
//! packed into `AtomicU64` words.
//!
//! A small block's start and length follow from its span and index, so
//! its state needs only two bits (never allocated, freed, live, live and
//! claimed) and the bits that tell its length apart within its class
//! (`classes::len_bits`): 2 bits for an exact 8-byte block, 5 for the
//! lengths 9–16 of a 16-byte one, 9 for the 385–512 of a 512-byte one.
//! A span packs `64 / width` fields per word. Each transition (take,
//! free, claim, release) is one atomic operation on the word that holds
//! the block's field, as the block word of a large block (`block.rs`);
//! other fields of that word may change meanwhile, so a compare-and-swap
//! that fails on them is retried as long as the block's own field is the
//! one the caller saw.
//!
//! A field, unlike a large block's word, does not say where its block is:
//! acting on one is sound only while its span cannot be remade elsewhere,
//! which the lookup's pin on the span guarantees (`allocator/lookup.rs`,
//! L2). The words hold no other state: the span's free count and flags are
//! in its state word (`allocator/spans.rs`).

use super::block::Block;
use crate::sync::{AtomicU64, Ordering};

/// Field state bits: `LIVE` set for a live block, `LOW` set for a freed
/// one (with `LIVE` clear) or a claimed one (with `LIVE` set); both clear
/// for a block never allocated since its span was made.
const LOW: u64 = 0b01;
const LIVE: u64 = 0b10;
const STATE_BITS: u32 = 2;

/// One block's field, in the low bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Field(u64);

impl Field {
    /// Never allocated since its span was made: `UnknownPointer`.
    pub(super) const NEVER: Field = Field(0);
    /// Allocated and freed: `DoubleFree`.
    pub(super) const FREED: Field = Field(LOW);
    /// Never taken: the padding past a span's last block in its last word.
    const PADDING: Field = Field(LIVE | LOW);

    /// A live allocation whose length is `code` past its class's shortest,
    /// claimed if `claimed`.
    pub(super) fn live(code: u32, claimed: bool) -> Field {
        Field((u64::from(code) << STATE_BITS) | LIVE | if claimed { LOW } else { 0 })
    }

    pub(super) fn is_live(self) -> bool {
        self.0 & LIVE != 0
    }

    pub(super) fn is_claimed(self) -> bool {
        self.0 & (LIVE | LOW) == LIVE | LOW
    }

    /// The length code of a live field.
    pub(super) fn code(self) -> u32 {
        (self.0 >> STATE_BITS) as u32
    }

    /// The block this field describes, at `start`, of lengths from
    /// `min_len`: the same shape as a large block's word, so one set of
    /// checks serves both.
    pub(super) fn block(self, start: u32, min_len: u32) -> Block {
        if self.is_live() {
            Block::live(start, min_len + self.code()).claimed_if(self.is_claimed())
        } else if self == Field::FREED {
            Block::freed_at(start)
        } else {
            Block::NEVER
        }
    }
}

/// How one class packs its fields into words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Packing {
    /// Bits per field.
    width: u32,
    /// Fields per word.
    per_word: u32,
    /// One field's bits, at shift 0.
    mask: u64,
    /// The `LIVE` bit of every field a word holds: a field is free (never
    /// allocated, or freed) when its bit is clear.
    live_bits: u64,
}

impl Packing {
    /// The packing of fields with `len_bits` length bits.
    pub(super) const fn new(len_bits: u32) -> Packing {
        let width = STATE_BITS + len_bits;
        let per_word = u64::BITS / width;
        let mut live_bits = 0;
        let mut i = 0;
        while i < per_word {
            live_bits |= LIVE << (i * width);
            i += 1;
        }
        Packing {
            width,
            per_word,
            mask: (1 << width) - 1,
            live_bits,
        }
    }

    /// Words that hold `blocks` fields.
    pub(super) const fn words(self, blocks: u32) -> u32 {
        blocks.div_ceil(self.per_word)
    }

    /// Word and shift of field `index`.
    #[inline]
    fn locate(self, index: u32) -> (usize, u32) {
        (
            (index / self.per_word) as usize,
            (index % self.per_word) * self.width,
        )
    }

    /// Field at `shift` of `word` (what a [`FieldRef`] reads).
    #[cfg(test)]
    fn get(self, word: u64, shift: u32) -> Field {
        Field((word >> shift) & self.mask)
    }

    fn with(self, word: u64, shift: u32, field: Field) -> u64 {
        (word & !(self.mask << shift)) | (field.0 << shift)
    }
}

/// The fields of one span's blocks.
pub(super) struct Fields<'a> {
    pub(super) words: &'a [AtomicU64],
    pub(super) packing: Packing,
}

impl<'a> Fields<'a> {
    /// Makes every field of a span of `blocks` blocks `NEVER`, and the
    /// padding past them never free. Only for a span nobody can take from
    /// or look up yet (being made, under the maker's exclusive right).
    pub(super) fn reset(&self, blocks: u32) {
        let per_word = self.packing.per_word;
        for (i, word) in (0u32..).zip(self.words) {
            let used = blocks.saturating_sub(i * per_word).min(per_word);
            let mut value = Field::NEVER.0;
            for slot in used..per_word {
                value = self
                    .packing
                    .with(value, slot * self.packing.width, Field::PADDING);
            }
            // Relaxed: published by the span's state store (Release).
            word.store(value, Ordering::Relaxed);
        }
    }

    /// Field `index`, located once: its word and its place in it.
    #[inline]
    pub(super) fn at(&self, index: u32) -> FieldRef<'a> {
        let (word, shift) = self.packing.locate(index);
        FieldRef {
            word: &self.words[word],
            shift,
            mask: self.packing.mask,
        }
    }

    /// Field `index` now ([`FieldRef::load`]).
    #[inline]
    pub(super) fn load(&self, index: u32) -> Field {
        self.at(index).load()
    }

    /// Takes a free field (never allocated, or freed) and makes it `to`;
    /// returns its index. The caller holds a reservation from the span's
    /// free count, so a free field exists for it (S1): it looks until it
    /// takes one.
    #[inline]
    pub(super) fn take(&self, to: Field) -> u32 {
        let packing = self.packing;
        loop {
            for (i, word) in (0u32..).zip(self.words) {
                // Relaxed: the compare-and-swap below decides, with Acquire.
                let mut seen = word.load(Ordering::Relaxed);
                loop {
                    let free = !seen & packing.live_bits;
                    if free == 0 {
                        break;
                    }
                    let slot = free.trailing_zeros() / packing.width;
                    let next = packing.with(seen, slot * packing.width, to);
                    // Acquire pairs with the Release of the free that made
                    // the field free: its accesses to the bytes happen
                    // before ours. Release publishes `to` (a claim taken
                    // with the allocation) to lookups.
                    match word.compare_exchange_weak(
                        seen,
                        next,
                        Ordering::AcqRel,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) => return i * packing.per_word + slot,
                        Err(now) => seen = now,
                    }
                }
            }
            // Every field we passed was taken by another reserver, and a
            // field we passed was freed meanwhile: look again.
            crate::sync::spin_loop();
        }
    }

    /// Ends the claim the caller holds on field `index`
    /// ([`FieldRef::release`]).
    #[inline]
    pub(super) fn release(&self, index: u32) {
        self.at(index).release();
    }
}

/// A field as read, and the whole word it was read from.
#[derive(Clone, Copy)]
pub(super) struct Seen {
    pub(super) field: Field,
    word: u64,
}

/// One block's field, located in its word: what a lookup acts on, so each
/// transition shifts and masks instead of dividing by the fields a word
/// holds again.
#[derive(Clone, Copy)]
pub(super) struct FieldRef<'a> {
    word: &'a AtomicU64,
    shift: u32,
    mask: u64,
}

impl FieldRef<'_> {
    fn get(self, word: u64) -> Field {
        Field((word >> self.shift) & self.mask)
    }

    /// The field now. Acquire pairs with the Release of the transition
    /// that wrote it: whoever acts on what it read sees the bytes'
    /// previous owner done with them.
    #[inline]
    pub(super) fn load(self) -> Field {
        self.load_seen().field
    }

    /// [`load`](Self::load), with the word it was read from.
    #[inline]
    pub(super) fn load_seen(self) -> Seen {
        self.seen(self.word.load(Ordering::Acquire))
    }

    /// A read-modify-write that changes nothing: a registered claim
    /// waiter's last look (Q1).
    pub(super) fn touch(self) -> Seen {
        self.seen(self.word.fetch_or(0, Ordering::AcqRel))
    }

    fn seen(self, word: u64) -> Seen {
        Seen {
            field: self.get(word),
            word,
        }
    }

    /// Moves the field from `seen` to `to` if it still is `seen`; else the
    /// field that stopped it.
    #[inline]
    pub(super) fn exchange(self, seen: Field, to: Field) -> Result<(), Field> {
        // Relaxed: the compare-and-swap below decides.
        let now = self.seen(self.word.load(Ordering::Relaxed));
        if now.field != seen {
            return Err(now.field);
        }
        self.exchange_seen(now, to).map_err(|stopped| stopped.field)
    }

    /// [`exchange`](Self::exchange) from a field as read: the first
    /// compare-and-swap expects the word it was read from, so a free that
    /// has just read and checked the field neither reads its word nor
    /// checks it again. Else the field that stopped it, with its word.
    #[inline]
    pub(super) fn exchange_seen(self, seen: Seen, to: Field) -> Result<(), Seen> {
        let mut now = seen.word;
        loop {
            let next = (now & !(self.mask << self.shift)) | (to.0 << self.shift);
            // AcqRel: Acquire for the last claim's writes (C2), Release so
            // the next owner of the bytes is ordered after us.
            match self
                .word
                .compare_exchange_weak(now, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Ok(()),
                Err(changed) => now = changed,
            }
            // Another field of the word changed, or a spurious failure.
            let field = self.get(now);
            if field != seen.field && !cfg!(slotarena_mutation = "exchange_seen_skips_recheck") {
                return Err(Seen { field, word: now });
            }
        }
    }

    /// Ends the claim the caller holds on this field. A read-modify-write
    /// so a claim waiter's last look never misses it (Q1).
    #[inline]
    pub(super) fn release(self) {
        // Release pairs with the Acquire of the next claim or free.
        let before = self.word.fetch_and(!(LOW << self.shift), Ordering::AcqRel);
        debug_assert!(self.get(before).is_claimed());
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use alloc::boxed::Box;
    use alloc::vec::Vec;

    use crate::linear::classes::{CLASS_COUNT, len_bits, span_blocks};

    fn words(n: u32) -> Box<[AtomicU64]> {
        (0..n).map(|_| AtomicU64::new(0)).collect()
    }

    #[test]
    fn every_class_packs_its_fields_and_its_longest_code_round_trips() {
        for class in 0..CLASS_COUNT {
            let packing = Packing::new(len_bits(class));
            assert!(packing.per_word >= 1 && packing.per_word * packing.width <= 64);
            let top = (1 << len_bits(class)) - 1;
            for field in [
                Field::live(top, false),
                Field::live(top, true),
                Field::FREED,
            ] {
                let word = packing.with(u64::MAX, packing.width, field);
                assert_eq!(packing.get(word, packing.width), field, "{class}");
                assert_eq!(packing.get(word, 0), packing.get(u64::MAX, 0));
            }
        }
        // An exact 8-byte block: 2 bits, 32 fields a word.
        assert_eq!(Packing::new(len_bits(1)).per_word, 32);
    }

    #[test]
    fn fields_take_free_ones_only_and_transitions_act_on_what_they_saw() {
        let packing = Packing::new(3);
        let store = words(packing.words(13));
        let fields = Fields {
            words: &store,
            packing,
        };
        fields.reset(13);
        let taken: Vec<u32> = (0..13)
            .map(|i| fields.take(Field::live(i % 8, false)))
            .collect();
        assert_eq!(taken, (0..13).collect::<Vec<_>>(), "lowest free first");
        let five = Field::live(5, false);
        assert_eq!(fields.load(5), five);
        assert_eq!(fields.at(5).exchange(five, Field::live(5, true)), Ok(()));
        assert_eq!(
            fields.at(5).exchange(five, Field::FREED),
            Err(Field::live(5, true))
        );
        fields.release(5);
        assert_eq!(fields.at(5).exchange(five, Field::FREED), Ok(()));
        assert_eq!(fields.load(5).block(40, 9), Block::freed_at(40));
        assert_eq!(fields.at(5).exchange(five, Field::FREED), Err(Field::FREED));
        // Field 5 is the only free one, padding included.
        assert_eq!(fields.take(Field::live(1, false)), 5);
        assert_eq!(fields.load(4).block(32, 9), Block::live(32, 13));
    }

    #[test]
    fn a_span_of_every_class_fits_its_fields_in_few_words() {
        for class in 0..CLASS_COUNT {
            let packing = Packing::new(len_bits(class));
            let store = words(packing.words(span_blocks(class)));
            let fields = Fields {
                words: &store,
                packing,
            };
            fields.reset(span_blocks(class));
            for i in 0..span_blocks(class) {
                assert_eq!(fields.load(i), Field::NEVER);
                assert_eq!(fields.take(Field::live(0, false)), i);
            }
        }
    }
}
