//! The admin token of `serve`: only a hash, with a generation that every replacement raises
//! and that every other `Store` on the same data dir sees at once.

use crate::helpers::new_store;

const HASH_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const HASH_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

#[test]
fn the_first_token_is_kept_and_a_replacement_raises_the_generation_for_every_reader() {
    let (_dir, store) = new_store();
    assert_eq!(store.admin_token().unwrap(), None);
    let first = store.create_admin_token(HASH_A).unwrap().unwrap();
    assert_eq!(first.generation, 1);
    assert_eq!(
        store.create_admin_token(HASH_B).unwrap(),
        None,
        "an existing token is not overwritten by a second first start"
    );
    let other = store::Store::open(store.data_dir()).unwrap();
    let replaced = other.replace_admin_token(HASH_B).unwrap();
    assert_eq!(replaced.generation, 2);
    let seen = store.admin_token().unwrap().unwrap();
    assert_eq!((seen.hash.as_str(), seen.generation), (HASH_B, 2));
    assert!(
        !format!("{seen:?}").contains(HASH_B),
        "Debug hides the hash"
    );
}

#[test]
fn a_value_that_is_not_a_sha256_is_refused() {
    let (_dir, store) = new_store();
    let err = store.replace_admin_token("dbt_plain_token").unwrap_err();
    assert!(err.to_string().starts_with("admin_token:"), "{err}");
    assert_eq!(store.admin_token().unwrap(), None);
}
