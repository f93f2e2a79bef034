//! [`Attributes`]: an identity's raw protocol attributes, kept as one sorted slice.
//!
//! A session keeps its raw attributes for hours, and after pruning (`crate::session::kept`)
//! there are few of them — often only the IdP session id `sid`. A `BTreeMap` allocates a
//! whole leaf (11 keys and 11 values, 544 bytes for these types) for its first entry, so a
//! one-entry map cost a CAAIS session 631 heap bytes; one exactly sized slice of
//! `(name, values)` pairs costs 48 bytes per entry plus the strings (issue 13 item 3,
//! bench/README.md "Session memory").
//!
//! The interface is the part of `BTreeMap` the gateway uses (look-up by name, insertion,
//! retention, iteration in name order), and the serialized form is the same JSON object in
//! the same key order: a shared store's records read and write as before.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Raw attributes by name, in name order, each name once. Look-ups are binary searches;
/// insertions reallocate (they happen while an identity is built, a handful of times).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    entries: Box<[(String, Vec<String>)]>,
}

impl Attributes {
    /// No attributes (no allocation).
    pub fn new() -> Attributes {
        Attributes::default()
    }

    /// The values of attribute `name`.
    pub fn get(&self, name: &str) -> Option<&Vec<String>> {
        self.position(name).ok().map(|i| &self.entries[i].1)
    }

    /// Whether attribute `name` is present.
    pub fn contains_key(&self, name: &str) -> bool {
        self.position(name).is_ok()
    }

    /// Sets the values of `name`, returning the ones it replaced.
    pub fn insert(&mut self, name: String, values: Vec<String>) -> Option<Vec<String>> {
        match self.position(&name) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, values)),
            Err(i) => {
                let mut entries = std::mem::take(&mut self.entries).into_vec();
                entries.insert(i, (name, values));
                self.entries = entries.into_boxed_slice();
                None
            }
        }
    }

    /// Keeps the attributes for which `keep` holds (the rest is freed, the slice shrunk).
    pub fn retain(&mut self, mut keep: impl FnMut(&String, &mut Vec<String>) -> bool) {
        let mut entries = std::mem::take(&mut self.entries).into_vec();
        entries.retain_mut(|(name, values)| keep(name, values));
        self.entries = entries.into_boxed_slice();
    }

    /// Number of attributes.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The attributes in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Vec<String>)> {
        self.entries.iter().map(|(name, values)| (name, values))
    }

    /// The attribute names in order.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.entries.iter().map(|(name, _)| name)
    }

    /// The attributes, mutably (names stay: they fix the order).
    pub(crate) fn values_mut(&mut self) -> impl Iterator<Item = (&mut String, &mut Vec<String>)> {
        self.entries.iter_mut().map(|(name, values)| (name, values))
    }

    /// Bytes of the slice itself (one block; the strings are counted by their owners).
    pub(crate) fn slice_bytes(&self) -> usize {
        std::mem::size_of_val::<[(String, Vec<String>)]>(&self.entries)
    }

    fn position(&self, name: &str) -> Result<usize, usize> {
        self.entries.binary_search_by(|(n, _)| n.as_str().cmp(name))
    }
}

impl From<BTreeMap<String, Vec<String>>> for Attributes {
    fn from(map: BTreeMap<String, Vec<String>>) -> Attributes {
        // A map iterates in key order, each key once: already the slice's invariant.
        Attributes { entries: map.into_iter().collect() }
    }
}

impl FromIterator<(String, Vec<String>)> for Attributes {
    /// Later values of a repeated name win, as with a map.
    fn from_iter<I: IntoIterator<Item = (String, Vec<String>)>>(iter: I) -> Attributes {
        iter.into_iter().collect::<BTreeMap<_, _>>().into()
    }
}

impl<const N: usize> From<[(String, Vec<String>); N]> for Attributes {
    fn from(entries: [(String, Vec<String>); N]) -> Attributes {
        entries.into_iter().collect()
    }
}

/// For tests only: production code looks attributes up with [`Attributes::get`].
#[cfg(test)]
impl std::ops::Index<&str> for Attributes {
    type Output = Vec<String>;

    /// The values of `name`; panics when it is absent, as a map does.
    fn index(&self, name: &str) -> &Vec<String> {
        match self.get(name) {
            Some(values) => values,
            None => panic!("no attribute {name:?}"),
        }
    }
}

/// Names only: values are personal data.
impl fmt::Debug for Attributes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.keys()).finish()
    }
}

/// A JSON object in name order, as the `BTreeMap` it replaces wrote it.
impl Serialize for Attributes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Attributes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Attributes, D::Error> {
        BTreeMap::<String, Vec<String>>::deserialize(deserializer).map(Attributes::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(v: &str) -> Vec<String> {
        vec![v.to_owned()]
    }

    #[test]
    fn attributes_stay_sorted_and_unique_whatever_the_insertion_order() {
        let mut attributes = Attributes::new();
        for name in ["sid", "Pracoviste.Id", "role_rpp", "a", "sid"] {
            attributes.insert(name.to_owned(), values(name));
        }
        let names: Vec<&str> = attributes.keys().map(String::as_str).collect();
        assert_eq!(names, ["Pracoviste.Id", "a", "role_rpp", "sid"], "byte order, as a BTreeMap<String, _>");
        assert_eq!(attributes.insert("a".into(), values("new")), Some(values("a")), "replaced, not added");
        assert_eq!(attributes.len(), 4);
        assert_eq!(attributes.get("a"), Some(&values("new")));
        assert_eq!(attributes.get("b"), None);
        assert!(attributes.contains_key("sid") && !attributes.contains_key("si"));
        attributes.retain(|name, _| name != "a" && name != "sid");
        assert_eq!(attributes.keys().collect::<Vec<_>>(), ["Pracoviste.Id", "role_rpp"]);
        attributes.retain(|_, _| false);
        assert!(attributes.is_empty());
        assert_eq!(attributes.slice_bytes(), 0, "an emptied set holds no allocation");
    }

    /// The stored form (a shared store's session record) is the `BTreeMap`'s: one JSON object
    /// in name order, read back into the same attributes, and readable as a map by an older
    /// instance. Repeated names in a record keep the last value, as the map did.
    #[test]
    fn attributes_serialize_exactly_as_the_map_they_replace() {
        let map: BTreeMap<String, Vec<String>> =
            [("sid".to_owned(), values("s1")), ("TimeLimitedId".to_owned(), vec!["x".into(), "y".into()])].into();
        let attributes = Attributes::from(map.clone());
        let json = serde_json::to_string(&attributes).unwrap();
        assert_eq!(json, serde_json::to_string(&map).unwrap());
        assert_eq!(json, r#"{"TimeLimitedId":["x","y"],"sid":["s1"]}"#);
        assert_eq!(serde_json::from_str::<Attributes>(&json).unwrap(), attributes);
        assert_eq!(serde_json::from_str::<BTreeMap<String, Vec<String>>>(&json).unwrap(), map);
        let repeated: Attributes = serde_json::from_str(r#"{"b":["1"],"a":["2"],"b":["3"]}"#).unwrap();
        assert_eq!(
            repeated.iter().collect::<Vec<_>>(),
            [(&"a".to_owned(), &values("2")), (&"b".to_owned(), &values("3"))]
        );
        assert_eq!(format!("{attributes:?}"), r#"["TimeLimitedId", "sid"]"#, "Debug prints names, no values");
    }
}
