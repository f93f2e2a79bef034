//! Interned names: the app names sessions carry, shared instead of copied into each one.
//!
//! Every session of an app names the same app; a copy per session costs an allocation each
//! (issue 13 item 3: "no per-session copies of static config"). [`intern`] hands out one
//! shared `Arc<str>` per distinct name. The table is bounded ([`MAX_NAMES`] names of at most
//! [`MAX_NAME_LEN`] bytes): names come from the configuration, but a caller passing
//! something else (a name from a store record) must not be able to grow it without bound —
//! past the bound a name is simply not shared.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

/// Distinct names the table keeps at most.
pub const MAX_NAMES: usize = 1024;
/// Longest name the table keeps, bytes.
pub const MAX_NAME_LEN: usize = 128;

fn table() -> &'static Mutex<HashSet<Arc<str>>> {
    static TABLE: OnceLock<Mutex<HashSet<Arc<str>>>> = OnceLock::new();
    TABLE.get_or_init(Mutex::default)
}

/// The shared copy of `name` (a new one past the table's bounds).
pub fn intern(name: &str) -> Arc<str> {
    if name.len() > MAX_NAME_LEN {
        return Arc::from(name);
    }
    let mut table = table().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(shared) = table.get(name) {
        return shared.clone();
    }
    let shared: Arc<str> = Arc::from(name);
    if table.len() < MAX_NAMES {
        table.insert(shared.clone());
    }
    shared
}

/// Serde for an interned name (`#[serde(with = "names::serde_one")]`): written as a plain
/// string, read back interned.
pub mod serde_one {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the name as a string.
    pub fn serialize<S: Serializer>(name: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(name)
    }

    /// Reads a string, interned.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<str>, D::Error> {
        Ok(super::intern(&std::borrow::Cow::<'de, str>::deserialize(d)?))
    }
}

/// Serde for an optional interned name (`#[serde(with = "names::serde_opt")]`): written as
/// a plain string or `null`, read back interned.
pub mod serde_opt {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the name as a string, or `null`.
    pub fn serialize<S: Serializer>(name: &Option<Arc<str>>, s: S) -> Result<S::Ok, S::Error> {
        match name {
            Some(name) => s.serialize_some(&**name),
            None => s.serialize_none(),
        }
    }

    /// Reads a string (interned) or `null`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Arc<str>>, D::Error> {
        Ok(Option::<std::borrow::Cow<'de, str>>::deserialize(d)?.map(|name| super::intern(&name)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_names_share_one_allocation_and_the_table_is_bounded() {
        let (a, b) = (intern("portal"), intern(&String::from("portal")));
        assert!(Arc::ptr_eq(&a, &b), "one copy per name");
        assert_eq!(&*a, "portal");
        let long = "x".repeat(MAX_NAME_LEN + 1);
        assert!(!Arc::ptr_eq(&intern(&long), &intern(&long)), "over-long names are not kept");
        for i in 0..MAX_NAMES + 10 {
            intern(&format!("names-test-{i}"));
        }
        assert!(table().lock().unwrap().len() <= MAX_NAMES, "bounded");
        assert_eq!(&*intern("names-test-overflow"), "names-test-overflow", "past the bound still a correct name");
    }
}
