//! Conversions between limen-core's and slotarena's errors, memory classes
//! and QoS classes. The tables in the [`limen`](super) module docs say
//! which directions lose information.

use limen_core::errors::MemoryError as LimenError;
use limen_core::memory::MemoryClass as LimenClass;
use limen_core::types::QoSClass as LimenQos;

use crate::{MemoryClass, MemoryError, QosClass};

/// slotarena's error as the nearest limen-core error. Lossy: limen-core has
/// no stale-token, queue-share or share-count variants (see the table in
/// the [`limen`](super) module docs).
impl From<MemoryError> for LimenError {
    fn from(error: MemoryError) -> LimenError {
        match error {
            MemoryError::NoFreeSlots | MemoryError::TooManyShares => LimenError::NoFreeSlots,
            MemoryError::BadToken | MemoryError::StaleToken => LimenError::BadToken,
            MemoryError::NotAllocated | MemoryError::NotShared => LimenError::NotAllocated,
            MemoryError::AlreadyBorrowed | MemoryError::TooManyReaders => {
                LimenError::AlreadyBorrowed
            }
            MemoryError::BorrowActive | MemoryError::QueueOwned => LimenError::BorrowActive,
            MemoryError::Poisoned => LimenError::Poisoned,
        }
    }
}

/// limen-core's error as the slotarena error of the same name. Lossless:
/// every limen-core 0.1.0-alpha.1 variant has a namesake.
impl From<LimenError> for MemoryError {
    fn from(error: LimenError) -> MemoryError {
        match error {
            LimenError::NoFreeSlots => MemoryError::NoFreeSlots,
            LimenError::BadToken => MemoryError::BadToken,
            LimenError::NotAllocated => MemoryError::NotAllocated,
            LimenError::AlreadyBorrowed => MemoryError::AlreadyBorrowed,
            LimenError::BorrowActive => MemoryError::BorrowActive,
            LimenError::Poisoned => MemoryError::Poisoned,
            // The enum is `#[non_exhaustive]`, but the pinned limen-core
            // version has no other variant. A later one would name
            // something this crate cannot vouch for, so call the token bad.
            _ => MemoryError::BadToken,
        }
    }
}

/// The same memory class in limen-core's type. Lossless.
impl From<MemoryClass> for LimenClass {
    fn from(class: MemoryClass) -> LimenClass {
        match class {
            MemoryClass::Host => LimenClass::Host,
            MemoryClass::PinnedHost => LimenClass::PinnedHost,
            MemoryClass::Device(ordinal) => LimenClass::Device(ordinal),
            MemoryClass::Shared => LimenClass::Shared,
        }
    }
}

/// The same memory class in slotarena's type. Lossless: limen-core
/// 0.1.0-alpha.1 has exactly slotarena's four classes.
impl From<LimenClass> for MemoryClass {
    fn from(class: LimenClass) -> MemoryClass {
        match class {
            LimenClass::Host => MemoryClass::Host,
            LimenClass::PinnedHost => MemoryClass::PinnedHost,
            LimenClass::Device(ordinal) => MemoryClass::Device(ordinal),
            LimenClass::Shared => MemoryClass::Shared,
            // `#[non_exhaustive]`, but the pinned version has no other
            // variant; ordinary host memory is the one class every
            // consumer accepts.
            _ => MemoryClass::Host,
        }
    }
}

/// slotarena's four QoS classes on limen-core's three, keeping their order
/// and defaults. Lossy: `LatencySensitive` and `Critical` both become
/// `LatencyCritical`.
impl From<QosClass> for LimenQos {
    fn from(qos: QosClass) -> LimenQos {
        match qos {
            QosClass::BestEffort => LimenQos::Background,
            QosClass::Standard => LimenQos::BestEffort,
            QosClass::LatencySensitive | QosClass::Critical => LimenQos::LatencyCritical,
        }
    }
}

/// limen-core's three QoS classes on slotarena's four, keeping their order
/// and defaults. Lossless: distinct classes stay distinct, and converting
/// back gives the class you started from.
impl From<LimenQos> for QosClass {
    fn from(qos: LimenQos) -> QosClass {
        match qos {
            LimenQos::Background => QosClass::BestEffort,
            LimenQos::BestEffort => QosClass::Standard,
            LimenQos::LatencyCritical => QosClass::LatencySensitive,
            // `#[non_exhaustive]`, but the pinned version has no other
            // variant; the default class is the neutral answer.
            _ => QosClass::Standard,
        }
    }
}
