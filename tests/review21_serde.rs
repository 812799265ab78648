//! Review of issue 21: loading a saved arena (feature `serde`).

use slotarena::{MessageToken, SlotArena};

fn saved() -> (SlotArena<u32>, MessageToken) {
    let arena = SlotArena::new(4);
    let key = arena.insert(7).unwrap();
    (arena, key)
}

/// The `Deserialize` impl reads field names as `&str` (`visit_map`:
/// `map.next_key::<&str>()`), which only a deserializer that can lend
/// from its input provides. `serde_json::from_reader` cannot: loading
/// the very bytes `to_writer` saved fails.
#[test]
fn an_arena_saved_to_a_writer_loads_from_a_reader() {
    let (arena, key) = saved();
    let mut bytes = Vec::new();
    serde_json::to_writer(&mut bytes, &arena).unwrap();
    let loaded: Result<SlotArena<u32>, _> = serde_json::from_reader(bytes.as_slice());
    match loaded {
        Ok(loaded) => assert_eq!(*loaded.get(key).unwrap(), 7),
        Err(error) => panic!(
            "from_reader of {:?}: {error}",
            String::from_utf8_lossy(&bytes)
        ),
    }
}

/// The same through `serde_json::Value` (owned strings).
#[test]
fn an_arena_saved_to_a_value_loads_from_it() {
    let (arena, key) = saved();
    let value = serde_json::to_value(&arena).unwrap();
    let loaded: Result<SlotArena<u32>, _> = serde_json::from_value(value.clone());
    match loaded {
        Ok(loaded) => assert_eq!(*loaded.get(key).unwrap(), 7),
        Err(error) => panic!("from_value of {value}: {error}"),
    }
}

/// A field name with a JSON escape cannot be borrowed either, even from
/// a `&str`: `"max\u005fcapacity"` is the name `max_capacity`.
#[test]
fn an_escaped_field_name_loads() {
    let loaded: Result<SlotArena<u32>, _> =
        serde_json::from_str(r#"{"max\u005fcapacity":4,"slots":[[0,7]]}"#);
    match loaded {
        Ok(loaded) => assert_eq!(*loaded.get(MessageToken::new(0, 0)).unwrap(), 7),
        Err(error) => panic!("escaped field name: {error}"),
    }
}
