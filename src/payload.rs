//! [`Payload`] and [`BufferDescriptor`]: how a message reports the bytes it carries.

#[cfg(feature = "alloc")]
use alloc::{boxed::Box, string::String, vec::Vec};

/// The size of a payload's data, in bytes.
///
/// # Examples
///
/// ```
/// use slotarena::{BufferDescriptor, Payload};
///
/// assert_eq!(BufferDescriptor::new(64).bytes(), 64);
/// assert_eq!([0u32; 4].buffer_descriptor().bytes(), 16);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct BufferDescriptor {
    bytes: usize,
}

impl BufferDescriptor {
    /// A descriptor for `bytes` bytes of payload data.
    #[inline]
    pub const fn new(bytes: usize) -> BufferDescriptor {
        BufferDescriptor { bytes }
    }

    /// The payload's size in bytes.
    #[inline]
    pub const fn bytes(&self) -> usize {
        self.bytes
    }
}

/// A value that can travel as a message payload.
///
/// The only requirement is to report its data size, which managers copy into
/// [`MessageHeader::payload_size_bytes`](crate::MessageHeader::payload_size_bytes)
/// so schedulers can account for memory without touching the payload. The
/// number is advisory: nothing unsafe relies on it.
///
/// Containers report the sum of their elements; `String` and `str` report
/// their length in bytes; `Option` reports its content or zero.
pub trait Payload {
    /// The size of the data this value carries.
    fn buffer_descriptor(&self) -> BufferDescriptor;
}

macro_rules! sized_payload {
    ($($t:ty),* $(,)?) => {$(
        impl Payload for $t {
            #[inline]
            fn buffer_descriptor(&self) -> BufferDescriptor {
                BufferDescriptor::new(core::mem::size_of::<$t>())
            }
        }
    )*};
}

sized_payload!(
    (),
    bool,
    char,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64,
);

impl<T: Payload> Payload for [T] {
    fn buffer_descriptor(&self) -> BufferDescriptor {
        BufferDescriptor::new(
            self.iter()
                .map(|item| item.buffer_descriptor().bytes())
                .sum(),
        )
    }
}

impl<T: Payload, const N: usize> Payload for [T; N] {
    fn buffer_descriptor(&self) -> BufferDescriptor {
        self.as_slice().buffer_descriptor()
    }
}

impl Payload for str {
    fn buffer_descriptor(&self) -> BufferDescriptor {
        BufferDescriptor::new(self.len())
    }
}

impl<T: Payload + ?Sized> Payload for &T {
    fn buffer_descriptor(&self) -> BufferDescriptor {
        (**self).buffer_descriptor()
    }
}

impl<T: Payload> Payload for Option<T> {
    fn buffer_descriptor(&self) -> BufferDescriptor {
        self.as_ref()
            .map_or_else(BufferDescriptor::default, T::buffer_descriptor)
    }
}

impl<A: Payload, B: Payload> Payload for (A, B) {
    fn buffer_descriptor(&self) -> BufferDescriptor {
        BufferDescriptor::new(
            self.0.buffer_descriptor().bytes() + self.1.buffer_descriptor().bytes(),
        )
    }
}

#[cfg(feature = "alloc")]
impl<T: Payload> Payload for Vec<T> {
    fn buffer_descriptor(&self) -> BufferDescriptor {
        self.as_slice().buffer_descriptor()
    }
}

#[cfg(feature = "alloc")]
impl<T: Payload + ?Sized> Payload for Box<T> {
    fn buffer_descriptor(&self) -> BufferDescriptor {
        (**self).buffer_descriptor()
    }
}

#[cfg(feature = "alloc")]
impl Payload for String {
    fn buffer_descriptor(&self) -> BufferDescriptor {
        BufferDescriptor::new(self.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_report_their_size_and_containers_the_sum_of_their_elements() {
        assert_eq!(().buffer_descriptor().bytes(), 0);
        assert_eq!(7u16.buffer_descriptor().bytes(), 2);
        assert_eq!([[0u32; 2]; 3].buffer_descriptor().bytes(), 24);
        assert_eq!([1u8; 5][1..].buffer_descriptor().bytes(), 4);
        assert_eq!(Some(5u32).buffer_descriptor().bytes(), 4);
        assert_eq!(None::<u32>.buffer_descriptor().bytes(), 0);
        assert_eq!((1u8, 2u32).buffer_descriptor().bytes(), 5);
        assert_eq!("abc".buffer_descriptor().bytes(), 3);
        assert_eq!((&"héllo").buffer_descriptor().bytes(), 6);
    }

    #[cfg(feature = "alloc")]
    #[test]
    fn allocated_containers_report_the_sum_of_their_elements() {
        use alloc::{boxed::Box, string::String, vec};

        assert_eq!(vec![1u8; 100].buffer_descriptor().bytes(), 100);
        assert_eq!(vec![vec![0u32; 2]; 3].buffer_descriptor().bytes(), 24);
        assert_eq!(String::from("héllo").buffer_descriptor().bytes(), 6);
        assert_eq!(Box::new([1u64; 3]).buffer_descriptor().bytes(), 24);
        let unsized_box: Box<[u16]> = Box::new([1, 2, 3]);
        assert_eq!(unsized_box.buffer_descriptor().bytes(), 6);
    }
}
