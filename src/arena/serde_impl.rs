//! Feature `serde`: an arena saved with its keys and generations, loaded
//! so that exactly the same keys are live and every stale key stays stale.
//!
//! The saved form is a struct of two fields: `max_capacity`, and `slots`,
//! one `(generation, value)` pair per slot created, in index order:
//!
//! - a live value: its generation and `Some(value)`, so its key (index and
//!   generation) names it again after loading;
//! - an empty slot: the generation its next value gets, and `None`, so no
//!   key the saved arena ever handed out reaches a value stored after
//!   loading; a slot retired because its generations ran out is saved as
//!   generation 2³² (no next generation) and stays retired.
//!
//! The generation is saved as a `u64` so that 2³² fits.

use alloc::vec::Vec;
use core::fmt;
use core::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeSeq, SerializeStruct, Serializer};

use super::word::{self, PRESENT, VACANT};
use super::{Core, MAX_CAPACITY, Recycle};
use crate::sync::Arc;
use crate::{MemoryError, MessageToken, SlotArena};

/// The saved generation of a retired slot: one past the last.
const RETIRED: u64 = 1 << 32;

/// Saves every value present with its key, and every slot's generation.
///
/// Each value is read under its read guard, so saving waits for writers
/// (a thread that holds a write guard on the arena and saves it waits for
/// itself). Values inserted or removed meanwhile may or may not be saved.
///
/// # Errors
///
/// The serializer's, and a custom error for a poisoned value (it may be
/// half-updated: take or remove it first) or a value at its reader limit.
///
/// # Examples
///
/// ```
/// use slotarena::{MemoryError, SlotArena};
///
/// let arena = SlotArena::new(4);
/// let stale = arena.insert(String::from("old")).unwrap();
/// arena.remove(stale).unwrap();
/// let kept = arena.insert(String::from("kept")).unwrap();
///
/// let saved = serde_json::to_string(&arena).unwrap();
/// let loaded: SlotArena<String> = serde_json::from_str(&saved).unwrap();
/// assert_eq!(*loaded.get(kept).unwrap(), "kept");
/// assert_eq!(loaded.get(stale).err(), Some(MemoryError::StaleToken));
/// assert_eq!(loaded.capacity(), 4);
/// ```
impl<T: Serialize, K> Serialize for SlotArena<T, K> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let core = &*self.core;
        let mut saved = serializer.serialize_struct("SlotArena", 2)?;
        saved.serialize_field("max_capacity", &core.places.max())?;
        saved.serialize_field("slots", &SavedSlots(core))?;
        saved.end()
    }
}

/// Every created slot, in index order.
struct SavedSlots<'a, T>(&'a Core<T>);

impl<T: Serialize> Serialize for SavedSlots<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let created = self.0.created();
        let mut slots = serializer.serialize_seq(Some(created))?;
        for index in 0..created {
            slots.serialize_element(&SavedSlot {
                core: self.0,
                index: index as u32,
            })?;
        }
        slots.end()
    }
}

/// One slot as `(generation, Option<value>)`, the value under a read guard.
struct SavedSlot<'a, T> {
    core: &'a Core<T>,
    index: u32,
}

impl<T: Serialize> Serialize for SavedSlot<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let slot = self.core.slot_at(self.index);
        loop {
            let word = slot.word();
            let generation = u64::from(word::generation(word));
            match word::state(word) {
                VACANT if slot.is_retired() => {
                    return (RETIRED, None::<&T>).serialize(serializer);
                }
                VACANT => return (generation, None::<&T>).serialize(serializer),
                PRESENT => {
                    let token = MessageToken::new(self.index, word::generation(word));
                    match self.core.read::<MessageToken>(token, true) {
                        Ok(guard) => return (generation, Some(&*guard)).serialize(serializer),
                        // Removed or replaced since the look: look again.
                        Err(MemoryError::NotAllocated | MemoryError::StaleToken) => {}
                        Err(error) => {
                            return Err(serde::ser::Error::custom(format_args!(
                                "cannot save {token:?}: {error}"
                            )));
                        }
                    }
                }
                // Removed or being taken: dead to its key; the slot's next
                // value gets the next generation (or none: `RETIRED`).
                _ => return (generation + 1, None::<&T>).serialize(serializer),
            }
        }
    }
}

/// Loads an arena saved by its `Serialize` impl: the same slots, each
/// with its generation, the same keys live (and only those), the same
/// maximum capacity, so a stale key stays stale.
///
/// # Errors
///
/// The deserializer's, and a custom error for a form no arena saves: more
/// slots than `max_capacity`, a `max_capacity` above
/// [`SlotArena::MAX_CAPACITY`], a generation past 2³², or a value in a
/// retired slot.
impl<'de, T: Deserialize<'de>, K> Deserialize<'de> for SlotArena<T, K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (max, slots) =
            deserializer.deserialize_struct("SlotArena", FIELDS, SavedVisitor(PhantomData))?;
        let core = Core::from_saved(max, slots).map_err(de::Error::custom)?;
        Ok(SlotArena {
            core: Arc::new(core),
            _key: PhantomData,
        })
    }
}

const FIELDS: &[&str] = &["max_capacity", "slots"];

type Saved<T> = (usize, Vec<(u64, Option<T>)>);

struct SavedVisitor<T>(PhantomData<fn() -> T>);

/// A saved arena's field name. Read through `deserialize_identifier`, so
/// formats that lend their input, hand out owned strings (readers,
/// `serde_json::Value`) or unescape names all work.
enum Field {
    MaxCapacity,
    Slots,
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Field, D::Error> {
        struct FieldVisitor;

        impl Visitor<'_> for FieldVisitor {
            type Value = Field;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`max_capacity` or `slots`")
            }

            fn visit_str<E: de::Error>(self, name: &str) -> Result<Field, E> {
                match name {
                    "max_capacity" => Ok(Field::MaxCapacity),
                    "slots" => Ok(Field::Slots),
                    other => Err(E::unknown_field(other, FIELDS)),
                }
            }
        }

        deserializer.deserialize_identifier(FieldVisitor)
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for SavedVisitor<T> {
    type Value = Saved<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a SlotArena: max_capacity and slots")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Saved<T>, A::Error> {
        let max = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let slots = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(1, &self))?;
        Ok((max, slots))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Saved<T>, A::Error> {
        let mut max = None;
        let mut slots = None;
        while let Some(field) = map.next_key::<Field>()? {
            match field {
                Field::MaxCapacity if max.is_none() => max = Some(map.next_value()?),
                Field::Slots if slots.is_none() => slots = Some(map.next_value()?),
                Field::MaxCapacity => return Err(de::Error::duplicate_field("max_capacity")),
                Field::Slots => return Err(de::Error::duplicate_field("slots")),
            }
        }
        Ok((
            max.ok_or_else(|| de::Error::missing_field("max_capacity"))?,
            slots.ok_or_else(|| de::Error::missing_field("slots"))?,
        ))
    }
}

impl<T> Core<T> {
    /// The arena a save describes (see the module docs).
    fn from_saved(max: usize, slots: Vec<(u64, Option<T>)>) -> Result<Core<T>, &'static str> {
        if max > MAX_CAPACITY {
            return Err("max_capacity exceeds SlotArena::MAX_CAPACITY");
        }
        if slots.len() > max {
            return Err("more slots than max_capacity");
        }
        for (generation, value) in &slots {
            if *generation > RETIRED || (*generation == RETIRED && value.is_some()) {
                return Err("a generation past 2^32, or a value in a retired slot");
            }
        }
        let core: Core<T> = Core::unlisted(slots.len(), max);
        // Highest index first, so a fresh arena hands slots out lowest
        // first, as a new one does.
        for (index, (generation, value)) in slots.into_iter().enumerate().rev() {
            let index = index as u32;
            let slot = core.slot_at(index);
            // The arena is ours alone: every slot is vacant, on no list.
            if generation == RETIRED {
                slot.set_free_generation(u32::MAX);
                slot.abandon();
                core.retire();
                continue;
            }
            slot.set_free_generation(generation as u32);
            match value {
                Some(value) => {
                    core.fill(index, value);
                }
                None => core.recycle(index),
            }
        }
        Ok(core)
    }
}
