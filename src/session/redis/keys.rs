//! Every key name the Redis store (and the link store on the same Redis) uses, in one place,
//! laid out so that the same names work on a single server, behind Sentinel and on a Redis
//! **Cluster**.
//!
//! Redis Cluster puts each key in one of 16384 hash slots, and a Lua script, a `MULTI`
//! transaction or a multi-key command (`MGET`, `SUNION`, `DEL a b`, …) must only touch keys of
//! one slot. Only the part of a name inside its first `{…}` (the *hash tag*) decides the slot,
//! so keys that must be touched together carry the same tag. On a single server the braces are
//! ordinary characters: one scheme serves every mode. `key_prefix` must therefore not contain
//! `{` or `}` (checked at startup): it would become the tag and pull every key into one slot.
//!
//! Layout (`P` = `key_prefix`, `XX` = the first byte of the session's store key in hex, so
//! sessions spread over 256 tags and thus over every master of a cluster):
//!
//! | key | tag (slot) | touched together by |
//! |---|---|---|
//! | `P{s:XX}:<store key>` session record | `s:XX` | load / remove scripts, save transaction |
//! | `P{s:XX}live` live-session shard (sorted set) | `s:XX` | the same, and the expiry sweep of shard `XX` |
//! | `P{s:XX}l:<store key>` refresh lease | `s:XX` | (single key; kept next to its session) |
//! | `P{s:XX}e:<store key>` the session's end facts | `s:XX` | the session's scripts and the expiry sweep |
//! | `Pp:<store key>` pending login | none | single key (`SET`, `GETDEL`) |
//! | `Pi:<HMAC>` logout index set | none | single-key commands only, one per set |
//! | `Pu:<HMAC>` per-user sorted set | none | single-key commands only, one per set |
//! | `Po:<scope>:<hash>` one-time id | none | single key (`SET NX PX`) |
//! | `Pc:<scope>:<HMAC>:<window>` attempt counter | none | single-key script |
//! | `P{m}maintenance`, `P{m}m:<app>` maintenance board | `m` | one transaction |
//! | `P{links}:…` account links | `links` | the link scripts ([`crate::links`]) |
//! | channel `Pended` | — | `PUBLISH` reaches every node's subscribers in a cluster |
//!
//! Rules for new keys: a single-key command needs no tag ([`KeyNames::plain`]); keys that one
//! script, transaction or multi-key command touches get one tag ([`KeyNames::tagged`]) — the
//! session's ([`KeyNames::session_tag`]) when they belong to a session. Reading several
//! untagged keys is one command per key (the multiplexed connection pipelines them), never
//! `MGET`/`SUNION` across tags. A script names every key it touches in `KEYS` (the cluster
//! client routes by the first), or builds names only from a tagged prefix it is given.

use super::hex;
use crate::session::StoreKey;

/// Number of session tags (and `live` shards): one per value of the store key's first byte.
pub(crate) const SESSION_SHARDS: usize = 256;

/// Whether `prefix` can be a key prefix: no braces (see the module documentation).
pub(crate) fn prefix_ok(prefix: &str) -> bool {
    !prefix.contains(['{', '}'])
}

/// The key names under one `key_prefix`.
#[derive(Debug, Clone)]
pub(crate) struct KeyNames {
    prefix: String,
}

impl KeyNames {
    /// Names under `prefix` (validated by the caller with [`prefix_ok`]).
    pub(crate) fn new(prefix: &str) -> KeyNames {
        KeyNames { prefix: prefix.to_owned() }
    }

    /// `P<rest>`: a key only ever used by single-key commands.
    pub(crate) fn plain(&self, rest: &str) -> String {
        format!("{}{rest}", self.prefix)
    }

    /// `P{<tag>}<rest>`: a key in the slot of `tag`, with every other key of that tag.
    pub(crate) fn tagged(&self, tag: &str, rest: &str) -> String {
        format!("{}{{{tag}}}{rest}", self.prefix)
    }

    /// The tag of `key`'s session: `s:XX` (shard `XX` of [`SESSION_SHARDS`]).
    pub(crate) fn session_tag(key: &StoreKey) -> String {
        Self::shard_tag(usize::from(key.0[0]))
    }

    /// The tag of shard `shard` (< [`SESSION_SHARDS`]).
    pub(crate) fn shard_tag(shard: usize) -> String {
        format!("s:{:02x}", shard % SESSION_SHARDS)
    }

    /// A session record.
    pub(crate) fn session(&self, key: &StoreKey) -> String {
        self.tagged(&Self::session_tag(key), &format!(":{}", hex(&key.0)))
    }

    /// The prefix of every session record of shard `shard` (the sweep appends the hex key).
    pub(crate) fn session_space(&self, shard: usize) -> String {
        self.tagged(&Self::shard_tag(shard), ":")
    }

    /// The live-session shard `key` belongs to.
    pub(crate) fn live_of(&self, key: &StoreKey) -> String {
        self.live(usize::from(key.0[0]))
    }

    /// Live-session shard `shard`.
    pub(crate) fn live(&self, shard: usize) -> String {
        self.tagged(&Self::shard_tag(shard), "live")
    }

    /// What the audit event of a session's expiry needs (see `live.rs`), kept beside it.
    pub(crate) fn end_facts(&self, key: &StoreKey) -> String {
        self.tagged(&Self::session_tag(key), &format!("e:{}", hex(&key.0)))
    }

    /// The prefix of the end facts of shard `shard` (the sweep appends the hex key).
    pub(crate) fn end_facts_space(&self, shard: usize) -> String {
        self.tagged(&Self::shard_tag(shard), "e:")
    }

    /// The refresh lease of a session.
    pub(crate) fn lease(&self, key: &StoreKey) -> String {
        self.tagged(&Self::session_tag(key), &format!("l:{}", hex(&key.0)))
    }

    /// A pending login.
    pub(crate) fn pending(&self, key: &StoreKey) -> String {
        self.plain(&format!("p:{}", hex(&key.0)))
    }

    /// A logout index set (`(provider, sid)` or `(provider, subject)`), named by an HMAC.
    pub(crate) fn index(&self, name: &[u8; 32]) -> String {
        self.plain(&format!("i:{}", hex(name)))
    }

    /// A per-user sorted set, named by an HMAC.
    pub(crate) fn user(&self, name: &[u8; 32]) -> String {
        self.plain(&format!("u:{}", hex(name)))
    }

    /// The set of apps in maintenance.
    pub(crate) fn maintenance(&self) -> String {
        self.tagged("m", "maintenance")
    }

    /// An app's maintenance notice (same slot as [`KeyNames::maintenance`]).
    pub(crate) fn notice(&self, app: &str) -> String {
        self.tagged("m", &format!("m:{app}"))
    }

    /// The key space of the account links: `P{links}:` (every link key in one slot).
    pub(crate) fn links_space(&self) -> String {
        self.tagged("links", ":")
    }

    /// The channel ended sessions are announced on.
    pub(crate) fn ended_channel(&self) -> String {
        self.plain("ended")
    }
}

/// The Redis Cluster hash slot of `key` (CRC16/XMODEM of the hash tag, or of the whole name
/// without one, modulo 16384), as the server computes it.
#[cfg(test)]
pub(crate) fn slot(key: &str) -> u16 {
    let bytes = key.as_bytes();
    let hashed = match bytes.iter().position(|b| *b == b'{') {
        Some(open) => match bytes[open + 1..].iter().position(|b| *b == b'}') {
            Some(len) if len > 0 => &bytes[open + 1..open + 1 + len],
            _ => bytes,
        },
        None => bytes,
    };
    let mut crc: u16 = 0;
    for byte in hashed {
        crc ^= u16::from(*byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    crc % 16384
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_its_live_shard_and_its_lease_share_a_slot_and_sessions_spread() {
        let names = KeyNames::new("aisgate:");
        let mut slots = std::collections::HashSet::new();
        for first in 0..=255u8 {
            let key = StoreKey([first; 32]);
            let slot_of_session = slot(&names.session(&key));
            assert_eq!(slot(&names.live_of(&key)), slot_of_session);
            assert_eq!(slot(&names.lease(&key)), slot_of_session);
            assert_eq!(slot(&names.end_facts(&key)), slot_of_session);
            assert!(names.session(&key).starts_with(&names.session_space(usize::from(first))));
            assert!(names.end_facts(&key).starts_with(&names.end_facts_space(usize::from(first))));
            slots.insert(slot_of_session);
        }
        assert_eq!(slots.len(), SESSION_SHARDS, "every shard its own slot");
        assert_eq!(slot(&names.maintenance()), slot(&names.notice("billing")));
        assert_eq!(slot("{user1000}.following"), slot("{user1000}.followers"));
        // The reference value from the Redis Cluster specification.
        // CRC16/XMODEM("123456789") = 0x31c3, below 16384.
        assert_eq!(slot("123456789"), 0x31c3);
    }

    #[test]
    fn a_prefix_with_braces_is_refused() {
        assert!(prefix_ok("aisgate:"));
        assert!(!prefix_ok("app{1}:"));
        assert!(!prefix_ok("x}"));
    }
}
