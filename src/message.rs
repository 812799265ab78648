//! [`MessageHeader`], [`Message`] and [`MemoryClass`]: what a manager stores.

use crate::payload::Payload;

/// Where a manager's messages live. Managers report it; the crate itself
/// keeps every class in host memory and uses it only as a label for
/// schedulers that route work by memory placement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MemoryClass {
    /// Ordinary pageable host memory.
    #[default]
    Host,
    /// Page-locked host memory, suitable for DMA.
    PinnedHost,
    /// Memory of accelerator number `n`.
    Device(u8),
    /// Memory shared between processes or devices.
    Shared,
}

/// Scheduling priority of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub enum QosClass {
    /// May be delayed or dropped under load.
    BestEffort,
    /// The default class.
    #[default]
    Standard,
    /// Should overtake `Standard` work.
    LatencySensitive,
    /// Must not be dropped or delayed.
    Critical,
}

/// Metadata that travels with every message, readable without touching
/// the payload (see [`HeaderStore`](crate::HeaderStore)).
///
/// # Examples
///
/// ```
/// use slotarena::{MessageHeader, QosClass};
///
/// let mut header = MessageHeader::empty();
/// header.set_trace_id(42).set_deadline(Some(1_000)).set_qos(QosClass::Critical);
/// assert_eq!(header.trace_id(), 42);
/// assert_eq!(header.deadline(), Some(1_000));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MessageHeader {
    trace_id: u64,
    sequence: u64,
    creation_tick: u64,
    deadline: Option<u64>,
    qos: QosClass,
    payload_size_bytes: usize,
    flags: u32,
    memory_class: MemoryClass,
}

macro_rules! header_field {
    ($(#[doc = $doc:literal] $field:ident, $setter:ident: $t:ty;)*) => {$(
        #[doc = concat!("The ", $doc, ".")]
        #[inline]
        pub const fn $field(&self) -> $t {
            self.$field
        }

        #[doc = concat!("Sets the ", $doc, "; returns `self` for chaining.")]
        #[inline]
        pub fn $setter(&mut self, value: $t) -> &mut Self {
            self.$field = value;
            self
        }
    )*};
}

impl MessageHeader {
    /// A header with every field zero or default.
    pub const fn empty() -> MessageHeader {
        MessageHeader {
            trace_id: 0,
            sequence: 0,
            creation_tick: 0,
            deadline: None,
            qos: QosClass::Standard,
            payload_size_bytes: 0,
            flags: 0,
            memory_class: MemoryClass::Host,
        }
    }

    header_field! {
        /// trace id that ties together the messages of one request
        trace_id, set_trace_id: u64;
        /// sequence number within the trace or stream
        sequence, set_sequence: u64;
        /// time the message was created, in the pipeline's clock ticks
        creation_tick, set_creation_tick: u64;
        /// tick by which the message should be done, if any
        deadline, set_deadline: Option<u64>;
        /// scheduling class
        qos, set_qos: QosClass;
        /// payload data size in bytes (kept in sync by `Message`)
        payload_size_bytes, set_payload_size_bytes: usize;
        /// application-defined flag bits
        flags, set_flags: u32;
        /// memory class of the payload
        memory_class, set_memory_class: MemoryClass;
    }
}

/// A header and a payload: the value a memory manager stores.
///
/// # Examples
///
/// ```
/// use slotarena::{Message, MessageHeader};
///
/// let message = Message::new(MessageHeader::empty(), [0u8; 64]);
/// assert_eq!(message.header().payload_size_bytes(), 64);
/// let message = message.map_payload(|bytes| bytes.len() as u32);
/// assert_eq!(*message.payload(), 64);
/// assert_eq!(message.header().payload_size_bytes(), 4);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Message<P> {
    header: MessageHeader,
    payload: P,
}

impl<P: Payload> Message<P> {
    /// Builds a message; the header's payload size is set from `payload`.
    pub fn new(mut header: MessageHeader, payload: P) -> Message<P> {
        header.set_payload_size_bytes(payload.buffer_descriptor().bytes());
        Message { header, payload }
    }

    /// Replaces the payload by `f(payload)` and syncs the payload size.
    pub fn map_payload<Q: Payload>(self, f: impl FnOnce(P) -> Q) -> Message<Q> {
        Message::new(self.header, f(self.payload))
    }

    /// Re-reads the payload size into the header, after changes made
    /// through [`payload_mut`](Self::payload_mut).
    pub fn sync_payload_size(&mut self) {
        self.header
            .set_payload_size_bytes(self.payload.buffer_descriptor().bytes());
    }
}

impl<P> Message<P> {
    /// The header.
    #[inline]
    pub fn header(&self) -> &MessageHeader {
        &self.header
    }

    /// The header, for updating.
    #[inline]
    pub fn header_mut(&mut self) -> &mut MessageHeader {
        &mut self.header
    }

    /// The payload.
    #[inline]
    pub fn payload(&self) -> &P {
        &self.payload
    }

    /// The payload, for updating. The header's payload size is not touched;
    /// call [`sync_payload_size`](Self::sync_payload_size) if it changed.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut P {
        &mut self.payload
    }

    /// Splits the message into its header and payload.
    #[inline]
    pub fn into_parts(self) -> (MessageHeader, P) {
        (self.header, self.payload)
    }
}
