//! [`Key`]: typed keys, so one arena's key cannot name another's value by
//! accident, and [`new_key_type!`](crate::new_key_type) to make them.

use core::fmt;
use core::hash::Hash;

use crate::MessageToken;

/// The key of a [`SlotArena<T, K>`](crate::SlotArena): a [`MessageToken`]
/// in a type of its own. [`MessageToken`] is the default key; make others
/// with [`new_key_type!`](crate::new_key_type).
///
/// Unlike slotmap's `Key`, this trait is safe to implement: an arena checks
/// every key it is given against the slot's word (index in range,
/// generation), so a key built wrongly answers an error, never undefined
/// behaviour.
pub trait Key: Copy + Eq + Hash + Ord + fmt::Debug {
    /// The key of `token`.
    fn from_token(token: MessageToken) -> Self;
    /// The token this key wraps.
    fn to_token(self) -> MessageToken;
}

impl Key for MessageToken {
    #[inline]
    fn from_token(token: MessageToken) -> Self {
        token
    }

    #[inline]
    fn to_token(self) -> MessageToken {
        self
    }
}

/// Declares key types for [`SlotArena<T, K>`](crate::SlotArena): each a
/// `Copy` newtype over [`MessageToken`] (8 bytes, and `Option` of it too),
/// implementing [`Key`], `Default` ([`MessageToken::INVALID`]), `Debug`,
/// `Eq`, `Ord`, `Hash`, `From<Key> for MessageToken`, and with feature
/// `serde`, `Serialize`/`Deserialize` as the token's bits.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "std")] {
/// use slotarena::{SlotArena, new_key_type};
///
/// new_key_type! {
///     /// Names a node.
///     pub struct NodeKey;
///     struct EdgeKey;
/// }
///
/// let nodes: SlotArena<&str, NodeKey> = SlotArena::with_key(4);
/// let edges: SlotArena<(NodeKey, NodeKey), EdgeKey> = SlotArena::with_key(4);
/// let a = nodes.insert("a").unwrap();
/// let b = nodes.insert("b").unwrap();
/// let ab = edges.insert((a, b)).unwrap();
/// assert_eq!(*nodes.get(edges.get(ab).unwrap().1).unwrap(), "b");
/// assert_eq!(core::mem::size_of::<Option<NodeKey>>(), 8);
/// # }
/// ```
///
/// A key of one arena does not compile as a key of another:
///
/// ```compile_fail
/// slotarena::new_key_type! { struct NodeKey; struct EdgeKey; }
///
/// let nodes: slotarena::SlotArena<u8, NodeKey> = slotarena::SlotArena::with_key(4);
/// let edges: slotarena::SlotArena<u8, EdgeKey> = slotarena::SlotArena::with_key(4);
/// let edge = edges.insert(1).unwrap();
/// nodes.get(edge); // error: expected `NodeKey`, found `EdgeKey`
/// ```
#[macro_export]
macro_rules! new_key_type {
    ($(#[$meta:meta])* $vis:vis struct $name:ident; $($rest:tt)*) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        #[repr(transparent)]
        $vis struct $name($crate::MessageToken);

        impl $crate::Key for $name {
            #[inline]
            fn from_token(token: $crate::MessageToken) -> Self {
                $name(token)
            }

            #[inline]
            fn to_token(self) -> $crate::MessageToken {
                self.0
            }
        }

        impl ::core::convert::From<$name> for $crate::MessageToken {
            #[inline]
            fn from(key: $name) -> $crate::MessageToken {
                key.0
            }
        }

        impl ::core::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                $crate::__fmt_key(::core::stringify!($name), self.0, f)
            }
        }

        $crate::__serde_key!($name);

        $crate::new_key_type!($($rest)*);
    };
    () => {};
}

/// `Name(3v1)`, or `Name(INVALID)`: a typed key's `Debug`.
#[doc(hidden)]
pub fn __fmt_key(name: &str, token: MessageToken, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    if token.is_valid() {
        write!(f, "{name}({}v{})", token.index(), token.generation())
    } else {
        write!(f, "{name}(INVALID)")
    }
}

/// A typed key's `Serialize`/`Deserialize` (feature `serde`): the bits.
#[cfg(feature = "serde")]
#[doc(hidden)]
#[macro_export]
macro_rules! __serde_key {
    ($name:ident) => {
        impl $crate::__serde::Serialize for $name {
            fn serialize<S: $crate::__serde::Serializer>(
                &self,
                serializer: S,
            ) -> ::core::result::Result<S::Ok, S::Error> {
                $crate::__serde::Serialize::serialize(&self.0, serializer)
            }
        }

        impl<'de> $crate::__serde::Deserialize<'de> for $name {
            fn deserialize<D: $crate::__serde::Deserializer<'de>>(
                deserializer: D,
            ) -> ::core::result::Result<Self, D::Error> {
                <$crate::MessageToken as $crate::__serde::Deserialize<'de>>::deserialize(
                    deserializer,
                )
                .map($name)
            }
        }
    };
}

/// Without feature `serde`, typed keys have no serde impls.
#[cfg(not(feature = "serde"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __serde_key {
    ($name:ident) => {};
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;

    crate::new_key_type! {
        struct Probe;
    }

    #[test]
    fn a_typed_key_is_its_token_and_so_is_its_option() {
        let token = MessageToken::new(3, 1);
        let key = Probe::from_token(token);
        assert_eq!(key.to_token(), token);
        assert_eq!(MessageToken::from(key), token);
        assert_eq!(Probe::default().to_token(), MessageToken::INVALID);
        assert_eq!(format!("{key:?}"), "Probe(3v1)");
        assert_eq!(format!("{:?}", Probe::default()), "Probe(INVALID)");
        assert_eq!(core::mem::size_of::<Option<Probe>>(), 8);
    }
}
