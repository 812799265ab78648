//! Feature `serde`: a saved and loaded arena has the same keys live (and
//! only those), the same generations, so a stale key stays stale.

use std::panic::{AssertUnwindSafe, catch_unwind};

use slotarena::{MemoryError, MessageToken, SlotArena};

fn round_trip<T, K>(arena: &SlotArena<T, K>) -> SlotArena<T, K>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    let saved = serde_json::to_string(arena).unwrap();
    serde_json::from_str(&saved).unwrap()
}

#[test]
fn live_keys_stay_live_and_stale_keys_stay_stale() {
    let mut arena = SlotArena::growable(4, 64);
    let live: Vec<MessageToken> = (0..3).map(|n| arena.insert(n).unwrap()).collect();
    let removed = arena.insert(10).unwrap();
    arena.remove(removed).unwrap();
    let reused_old = live[1];
    arena.remove(reused_old).unwrap();
    let reused_new = arena.insert(11).unwrap();
    assert_eq!(reused_new.index(), reused_old.index());
    assert!(arena.__set_free_generation(removed.index(), u32::MAX));

    let mut loaded = round_trip(&arena);
    assert_eq!(
        (loaded.len(), loaded.capacity(), loaded.max_capacity()),
        (3, 4, 64)
    );
    for token in [live[0], live[2], reused_new] {
        assert_eq!(*loaded.get(token).unwrap(), *arena.get(token).unwrap());
    }
    assert_eq!(loaded.get(reused_old).err(), Some(MemoryError::StaleToken));
    assert_eq!(loaded.get(removed).err(), Some(MemoryError::NotAllocated));
    // Exactly those keys are live.
    let mut keys: Vec<MessageToken> = loaded.exclusive().unwrap().keys().collect();
    keys.sort();
    let mut expected = vec![live[0], live[2], reused_new];
    expected.sort();
    assert_eq!(keys, expected);
    // The empty slot's generation came along: its next value is the last
    // one, then the slot retires, as in the saved arena.
    let last = loaded.insert(12).unwrap();
    assert_eq!(
        (last.index(), last.generation()),
        (removed.index(), u32::MAX)
    );
    loaded.remove(last).unwrap();
    let again = round_trip(&loaded);
    assert_eq!(
        (again.capacity(), again.max_capacity()),
        (3, 63),
        "still retired"
    );
    assert!(
        again.insert(13).is_ok(),
        "growth goes on past a retired slot"
    );
}

#[test]
fn values_that_hold_their_own_keys_survive() {
    let arena = SlotArena::new(4);
    let keys: Vec<MessageToken> = (0..3)
        .map(|n| arena.insert_with_key(|key| (key, n)).unwrap())
        .collect();
    let loaded = round_trip(&arena);
    for key in keys {
        assert_eq!(loaded.get(key).unwrap().0, key);
    }
}

#[test]
fn a_poisoned_value_is_not_saved_silently() {
    let arena = SlotArena::new(2);
    let token = arena.insert(1).unwrap();
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let _guard = arena.get_mut(token).unwrap();
        panic!("poison it");
    }));
    let error = serde_json::to_string(&arena).unwrap_err();
    assert!(error.to_string().contains("poisoned"), "{error}");
}

#[test]
fn forms_no_arena_saves_are_refused() {
    for bad in [
        r#"{"max_capacity":1,"slots":[[0,null],[0,null]]}"#,
        r#"{"max_capacity":99999999999,"slots":[]}"#,
        r#"{"max_capacity":2,"slots":[[4294967297,null]]}"#,
        r#"{"max_capacity":2,"slots":[[4294967296,5]]}"#,
    ] {
        assert!(serde_json::from_str::<SlotArena<u8>>(bad).is_err(), "{bad}");
    }
    let ok: SlotArena<u8> =
        serde_json::from_str(r#"{"max_capacity":2,"slots":[[3,7],[4294967296,null]]}"#).unwrap();
    assert_eq!(*ok.get(MessageToken::new(0, 3)).unwrap(), 7);
    assert_eq!(ok.capacity(), 1);
}

slotarena::new_key_type! {
    struct Id;
}

#[test]
fn typed_keys_round_trip_with_their_arena() {
    let arena: SlotArena<(Id, u8), Id> = SlotArena::with_key(2);
    let id = arena.insert_with_key(|id| (id, 1)).unwrap();
    let saved_key = serde_json::to_string(&id).unwrap();
    assert_eq!(saved_key, MessageToken::from(id).to_bits().to_string());
    let loaded: SlotArena<(Id, u8), Id> = round_trip(&arena);
    let id_again: Id = serde_json::from_str(&saved_key).unwrap();
    assert_eq!(*loaded.get(id_again).unwrap(), (id, 1));
}
