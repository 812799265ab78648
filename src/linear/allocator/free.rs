//! Frees: the exact answers (`UnknownPointer`, `DoubleFree`,
//! `LengthMismatch`, `Busy`) and the give-back of the block.
//!
//! A free reads the directory once and acts at the place it names
//! (`lookup::Allocator::at_place`, L1–L2): a small block's free pins its
//! span, reads and swaps the block's field and gives the block back in
//! the compare-and-swap that unpins (L2, S1), without building a lookup's
//! `Found` or reading the field as a large block's word; a large block's
//! free decides by its word, which names its own range.

use super::super::LinearMemoryError;
use super::super::classes::min_len;
use super::super::fields::Field;
use super::Allocator;
use super::large::LargeDesc;

impl Allocator {
    /// Frees the allocation that starts at `ptr` and is `len` bytes long,
    /// counting it on byte-counter `shard`.
    pub(in crate::linear) fn free(
        &self,
        shard: usize,
        ptr: u32,
        len: u32,
    ) -> Result<(), LinearMemoryError> {
        self.free_checked(shard, ptr, len, false)
    }

    /// [`free`](Self::free) for a registered claim waiter: reads the block's
    /// word with a read-modify-write (Q1) instead of a load.
    pub(in crate::linear) fn free_touching(
        &self,
        shard: usize,
        ptr: u32,
        len: u32,
    ) -> Result<(), LinearMemoryError> {
        self.free_checked(shard, ptr, len, true)
    }

    fn free_checked(
        &self,
        shard: usize,
        ptr: u32,
        len: u32,
        touch: bool,
    ) -> Result<(), LinearMemoryError> {
        let answer = self.at_place(
            ptr,
            |class, desc| self.free_small(shard, class, desc, ptr, len, touch),
            |desc, large| self.free_large_at(desc, large, ptr, len, touch),
        );
        match answer {
            Some(Ok(())) => {}
            Some(Err(error)) => return Err(error),
            None => return Err(self.not_a_start(ptr)),
        }
        self.count_allocated(shard, u64::from(len), false);
        self.bytes_room.notify_all();
        Ok(())
    }

    /// Frees the block of span `desc` of `class` that starts at `ptr`
    /// under a pin on the span (L2), giving it back as it unpins (S1);
    /// `Err` if the span is not at `ptr`'s place any more (the directory
    /// named a descriptor remade elsewhere since).
    #[inline]
    fn free_small(
        &self,
        shard: usize,
        class: usize,
        desc: u32,
        ptr: u32,
        len: u32,
        touch: bool,
    ) -> Result<Result<(), LinearMemoryError>, ()> {
        let Some(block) = self.pinned_block(class, desc, ptr)? else {
            return Ok(Err(self.not_a_start(ptr)));
        };
        if !block.at_start {
            // Inside a block.
            return Ok(Err(self.not_a_start(ptr)));
        }
        let field = block.span.fields(class).at(block.index);
        let mut read = if touch {
            field.touch()
        } else {
            field.load_seen()
        };
        loop {
            let seen = read.field;
            if !seen.is_live() {
                return Ok(Err(if seen == Field::FREED {
                    LinearMemoryError::DoubleFree
                } else {
                    // Never allocated since its span was made.
                    self.not_a_start(ptr)
                }));
            }
            if min_len(class) + seen.code() != len {
                return Ok(Err(LinearMemoryError::LengthMismatch));
            }
            if seen.is_claimed() {
                return Ok(Err(LinearMemoryError::Busy));
            }
            match field.exchange_seen(read, Field::FREED) {
                Ok(()) => break,
                Err(now) => read = now,
            }
        }
        // The field was live, so the span cannot have retired (S2).
        block.pin.freed(shard);
        Ok(Ok(()))
    }

    /// Frees large block `desc` (`large`) if its word is the live,
    /// unclaimed allocation `ptr..ptr + len`: the word names its own
    /// range, so a stale descriptor decides too (L2).
    fn free_large_at(
        &self,
        desc: u32,
        large: &LargeDesc,
        ptr: u32,
        len: u32,
        touch: bool,
    ) -> Result<(), LinearMemoryError> {
        let word = &large.word;
        let mut seen = if touch { word.touch() } else { word.load() };
        loop {
            if !seen.was_allocated() || seen.start() != ptr {
                // Never allocated here, inside a block, or a block whose
                // place went to another owner.
                return Err(self.not_a_start(ptr));
            }
            if !seen.is_live() {
                return Err(LinearMemoryError::DoubleFree);
            }
            if seen.len() != len {
                return Err(LinearMemoryError::LengthMismatch);
            }
            if seen.is_claimed() {
                return Err(LinearMemoryError::Busy);
            }
            match word.free(seen) {
                Ok(()) => break,
                Err(now) => seen = now,
            }
        }
        // The word was live, so the descriptor is still this block's.
        self.free_large(desc, large, ptr, len);
        Ok(())
    }
}
