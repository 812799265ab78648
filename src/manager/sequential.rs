//! The slot table shared by the two single-owner managers.
//!
//! `StaticMemoryManager` keeps it in an array and `HeapMemoryManager` in a
//! boxed slice; everything else is this one type, so both answer exactly
//! the same way. Freed slots form an intrusive LIFO free list, and slots
//! that never held a message are taken in index order past a high-water
//! mark, which makes `store`, `free` and `available` O(1) and lets a table
//! start out with every slot alike (so `StaticMemoryManager::new` is a
//! `const fn`).

use core::marker::PhantomData;
use core::mem;

use crate::{MemoryError, Message, MessageToken};

/// Free-list terminator.
const NIL: u32 = u32::MAX;

/// One slot. The generation moves on at every free, so the tokens of the
/// message that was freed never match again.
pub(crate) enum Slot<P> {
    Vacant {
        generation: u32,
        next_free: u32,
    },
    Occupied {
        generation: u32,
        message: Message<P>,
    },
}

impl<P> Slot<P> {
    /// A slot that never held a message: generation 0, on no list.
    pub(crate) const fn unused() -> Slot<P> {
        Slot::Vacant {
            generation: 0,
            next_free: NIL,
        }
    }
}

/// Slots plus the head of their free list.
pub(crate) struct SlotTable<P, S> {
    slots: S,
    /// Head of the LIFO list of freed slots, or `NIL`.
    free_head: u32,
    /// Slots at and past this index never held a message. `store` takes
    /// them in index order once the free list is empty.
    unused_from: usize,
    live: usize,
    /// Slots whose generations ran out: their last message had generation
    /// `u32::MAX`, so they are on no list and never hold a message again.
    retired: usize,
    _payload: PhantomData<fn() -> P>,
}

impl<P, S: AsRef<[Slot<P>]> + AsMut<[Slot<P>]>> SlotTable<P, S> {
    /// Takes slots built with [`Slot::unused`].
    pub(crate) const fn new(slots: S) -> SlotTable<P, S> {
        SlotTable {
            slots,
            free_head: NIL,
            unused_from: 0,
            live: 0,
            retired: 0,
            _payload: PhantomData,
        }
    }

    /// Slots, less the retired ones.
    pub(crate) fn capacity(&self) -> usize {
        self.slots.as_ref().len() - self.retired
    }

    pub(crate) fn available(&self) -> usize {
        self.capacity() - self.live
    }

    /// Stores into the most recently freed slot, else the first never-used
    /// one (so a fresh table hands out indexes 0, 1, 2, …).
    pub(crate) fn store(&mut self, message: Message<P>) -> Result<MessageToken, MemoryError> {
        let fresh = self.free_head == NIL;
        let index = if fresh {
            self.unused_from
        } else {
            self.free_head as usize
        };
        // Past the last slot only when the free list is empty: full.
        let slot = self
            .slots
            .as_mut()
            .get_mut(index)
            .ok_or(MemoryError::NoFreeSlots)?;
        let Slot::Vacant {
            generation,
            next_free,
        } = *slot
        else {
            unreachable!("slot {index} is free-listed or never used, yet occupied");
        };
        *slot = Slot::Occupied {
            generation,
            message,
        };
        if fresh {
            self.unused_from += 1;
        } else {
            self.free_head = next_free;
        }
        self.live += 1;
        // `index < capacity <= MessageToken::MAX_INDEX + 1`, so it fits.
        Ok(MessageToken::new(index as u32, generation))
    }

    /// Finds the occupied slot `token` names, answering errors in the
    /// contract's order: `BadToken` (out of range, or a generation the slot
    /// has not reached: never handed out), `NotAllocated`, `StaleToken`.
    fn check(&self, token: MessageToken) -> Result<(), MemoryError> {
        match self.slots.as_ref().get(token.index()) {
            None => Err(MemoryError::BadToken),
            Some(Slot::Vacant { generation, .. } | Slot::Occupied { generation, .. })
                if token.generation() > *generation =>
            {
                Err(MemoryError::BadToken)
            }
            Some(Slot::Vacant { .. }) => Err(MemoryError::NotAllocated),
            Some(Slot::Occupied { generation, .. }) if *generation != token.generation() => {
                Err(MemoryError::StaleToken)
            }
            Some(Slot::Occupied { .. }) => Ok(()),
        }
    }

    pub(crate) fn get(&self, token: MessageToken) -> Result<&Message<P>, MemoryError> {
        self.check(token)?;
        match &self.slots.as_ref()[token.index()] {
            Slot::Occupied { message, .. } => Ok(message),
            Slot::Vacant { .. } => unreachable!("checked occupied"),
        }
    }

    pub(crate) fn get_mut(&mut self, token: MessageToken) -> Result<&mut Message<P>, MemoryError> {
        self.check(token)?;
        match &mut self.slots.as_mut()[token.index()] {
            Slot::Occupied { message, .. } => Ok(message),
            Slot::Vacant { .. } => unreachable!("checked occupied"),
        }
    }

    /// Frees the slot and hands its message back. The slot is on the free
    /// list before the caller drops the message, so a panicking `Drop`
    /// cannot lose it. A slot whose message had the last generation is
    /// retired instead: its next generation would wrap to one an old token
    /// carries.
    pub(crate) fn take(&mut self, token: MessageToken) -> Result<Message<P>, MemoryError> {
        self.check(token)?;
        let index = token.index();
        let next = token.generation().checked_add(1);
        let vacant = Slot::Vacant {
            generation: next.unwrap_or(u32::MAX),
            next_free: if next.is_some() { self.free_head } else { NIL },
        };
        let Slot::Occupied { message, .. } = mem::replace(&mut self.slots.as_mut()[index], vacant)
        else {
            unreachable!("checked occupied");
        };
        if next.is_some() {
            self.free_head = index as u32;
        } else {
            self.retired += 1;
        }
        self.live -= 1;
        Ok(message)
    }
}

/// Implements `HeaderStore`, `MemoryManager`, `take` and `Debug` for a
/// manager whose `table` field is a [`SlotTable`]: both single-owner
/// managers answer identically. `$new` is the doc examples' expression for
/// a fresh manager of four `u32` slots.
macro_rules! impl_single_owner_manager {
    ($manager:ident $(, const $n:ident: usize)?, new = $new:literal) => {
        impl<P $(, const $n: usize)?> $crate::HeaderStore for $manager<P $(, $n)?> {
            type HeaderGuard<'a>
                = &'a $crate::MessageHeader
            where
                Self: 'a;

            fn peek_header(
                &self,
                token: $crate::MessageToken,
            ) -> Result<&$crate::MessageHeader, $crate::MemoryError> {
                self.table.get(token).map($crate::Message::header)
            }
        }

        impl<P: $crate::Payload $(, const $n: usize)?> $crate::MemoryManager<P>
            for $manager<P $(, $n)?>
        {
            type ReadGuard<'a>
                = &'a $crate::Message<P>
            where
                Self: 'a;
            type WriteGuard<'a>
                = &'a mut $crate::Message<P>
            where
                Self: 'a;

            fn store(
                &mut self,
                value: $crate::Message<P>,
            ) -> Result<$crate::MessageToken, $crate::MemoryError> {
                self.table.store(value)
            }

            fn read(
                &self,
                token: $crate::MessageToken,
            ) -> Result<&$crate::Message<P>, $crate::MemoryError> {
                self.table.get(token)
            }

            fn read_mut(
                &mut self,
                token: $crate::MessageToken,
            ) -> Result<&mut $crate::Message<P>, $crate::MemoryError> {
                self.table.get_mut(token)
            }

            fn free(&mut self, token: $crate::MessageToken) -> Result<(), $crate::MemoryError> {
                self.table.take(token).map(drop)
            }

            fn available(&self) -> usize {
                self.table.available()
            }

            fn capacity(&self) -> usize {
                self.table.capacity()
            }

            fn memory_class(&self) -> $crate::MemoryClass {
                self.class
            }
        }

        impl<P $(, const $n: usize)?> $manager<P $(, $n)?> {
            /// Frees the message `token` names and returns it.
            ///
            /// # Errors
            ///
            /// `BadToken`, `NotAllocated`, `StaleToken`, as for `free`.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use slotarena::{", stringify!($manager), ", MemoryError, MemoryManager, Message, MessageHeader};")]
            ///
            #[doc = concat!("let mut manager = ", $new, ";")]
            /// let token = manager.store(Message::new(MessageHeader::empty(), 7)).unwrap();
            /// let (_header, payload) = manager.take(token).unwrap().into_parts();
            /// assert_eq!(payload, 7);
            /// assert_eq!(manager.take(token).err(), Some(MemoryError::NotAllocated));
            /// ```
            pub fn take(
                &mut self,
                token: $crate::MessageToken,
            ) -> Result<$crate::Message<P>, $crate::MemoryError> {
                self.table.take(token)
            }
        }

        /// A summary (capacity, free slots, memory class) that needs no
        /// `P: Debug`, like the concurrent manager's.
        impl<P $(, const $n: usize)?> core::fmt::Debug for $manager<P $(, $n)?> {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.debug_struct(stringify!($manager))
                    .field("capacity", &self.table.capacity())
                    .field("available", &self.table.available())
                    .field("memory_class", &self.class)
                    .finish()
            }
        }
    };
}
pub(crate) use impl_single_owner_manager;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MessageHeader;

    /// Issue 21, item 7, for the single-owner managers: the slot's last
    /// generation is handed out once, then the slot retires.
    #[test]
    fn a_slot_whose_generation_would_wrap_is_retired() {
        let mut table = SlotTable::new([Slot::unused(), Slot::unused()]);
        table.slots[0] = Slot::Vacant {
            generation: u32::MAX,
            next_free: NIL,
        };
        let last = table
            .store(Message::new(MessageHeader::empty(), 1u8))
            .unwrap();
        assert_eq!((last.index(), last.generation()), (0, u32::MAX));
        table.take(last).unwrap();
        assert_eq!((table.capacity(), table.available()), (1, 1));
        assert_eq!(table.get(last).err(), Some(MemoryError::NotAllocated));
        let other = table
            .store(Message::new(MessageHeader::empty(), 2u8))
            .unwrap();
        assert_eq!(other.index(), 1);
        assert_eq!(
            table.store(Message::new(MessageHeader::empty(), 3u8)).err(),
            Some(MemoryError::NoFreeSlots),
            "a retired slot was reused"
        );
        table.take(other).unwrap();
        assert_eq!(table.available(), 1);
    }
}
