//! The slot table shared by the two single-owner managers.
//!
//! `StaticMemoryManager` keeps it in an array and `HeapMemoryManager` in a
//! boxed slice; everything else is this one type, so both answer exactly
//! the same way. Vacant slots form an intrusive LIFO free list, which makes
//! `store`, `free` and `available` O(1).

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
    /// A vacant slot of generation 0 whose free-list successor is `next`
    /// (or the end of the list past the last slot).
    pub(crate) fn vacant(index: usize, len: usize) -> Slot<P> {
        let next_free = if index + 1 < len {
            (index + 1) as u32
        } else {
            NIL
        };
        Slot::Vacant {
            generation: 0,
            next_free,
        }
    }
}

/// Slots plus the head of their free list.
pub(crate) struct SlotTable<P, S> {
    slots: S,
    free_head: u32,
    live: usize,
    _payload: PhantomData<fn() -> P>,
}

impl<P, S: AsRef<[Slot<P>]> + AsMut<[Slot<P>]>> SlotTable<P, S> {
    /// Takes slots built with [`Slot::vacant`], chained in index order.
    pub(crate) fn new(slots: S) -> SlotTable<P, S> {
        let free_head = if slots.as_ref().is_empty() { NIL } else { 0 };
        SlotTable {
            slots,
            free_head,
            live: 0,
            _payload: PhantomData,
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.slots.as_ref().len()
    }

    pub(crate) fn available(&self) -> usize {
        self.capacity() - self.live
    }

    pub(crate) fn store(&mut self, message: Message<P>) -> Result<MessageToken, MemoryError> {
        let index = self.free_head;
        let slot = self
            .slots
            .as_mut()
            .get_mut(index as usize)
            .ok_or(MemoryError::NoFreeSlots)?;
        let Slot::Vacant {
            generation,
            next_free,
        } = *slot
        else {
            unreachable!("free list names occupied slot {index}");
        };
        *slot = Slot::Occupied {
            generation,
            message,
        };
        self.free_head = next_free;
        self.live += 1;
        Ok(MessageToken::new(index, generation))
    }

    /// Finds the occupied slot `token` names, answering errors in the
    /// contract's order: `BadToken`, `NotAllocated`, `StaleToken`.
    fn check(&self, token: MessageToken) -> Result<(), MemoryError> {
        match self.slots.as_ref().get(token.index()) {
            None => Err(MemoryError::BadToken),
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
    /// cannot lose it.
    pub(crate) fn take(&mut self, token: MessageToken) -> Result<Message<P>, MemoryError> {
        self.check(token)?;
        let index = token.index();
        let vacant = Slot::Vacant {
            generation: token.generation().wrapping_add(1),
            next_free: self.free_head,
        };
        let Slot::Occupied { message, .. } = mem::replace(&mut self.slots.as_mut()[index], vacant)
        else {
            unreachable!("checked occupied");
        };
        self.free_head = index as u32;
        self.live -= 1;
        Ok(message)
    }
}

/// Implements `HeaderStore` and `MemoryManager` for a manager whose `table`
/// field is a [`SlotTable`]: both single-owner managers answer identically.
macro_rules! impl_single_owner_manager {
    ($manager:ident $(, const $n:ident: usize)?) => {
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
            pub fn take(
                &mut self,
                token: $crate::MessageToken,
            ) -> Result<$crate::Message<P>, $crate::MemoryError> {
                self.table.take(token)
            }
        }
    };
}
pub(crate) use impl_single_owner_manager;
