//! Key names of the Redis link store: keyed hashes of the ids, never a BSI or a legacy id
//! (personal identifiers) in a key name, where `KEYS`, `SCAN`, `MONITOR`, slow logs and
//! memory reports would show them.
//!
//! A name is `HMAC-SHA256(key, kind ‖ id)` in hex under a key derived from one session key
//! ([`crate::session::keyring::Keyring::derived_keys`]): the same on every instance and after
//! a restart. Links are permanent while session keys rotate, so the store names the session
//! key its names are made with (`<prefix>{links}:kid`, set once) and keeps using that one; a
//! rotation only has to keep it in `[session] keys` (not first). If it is gone every link
//! operation fails with the reason: nothing is read or written under other names.
//!
//! The first use of a store without `kid` converts the links of earlier versions (raw ids in
//! the names, `b:<bsi>` / `l:<legacy id>`) to hashed names, one script per link, then sets
//! `kid`. Converting twice (two instances starting at once) is harmless: a link already
//! converted is skipped.

use aws_lc_rs::hmac;
use redis::Script;

use super::{LinkError, RedisLinks};
use crate::session::redis::backend::Conn;

/// Domain label of the derived key (no other use of the session keys shares it).
pub(super) const LABEL: &[u8] = b"aisgate/links-key-names/v1\0";

/// Moves one link from its raw names to hashed ones. KEYS: raw bsi hash, raw legacy key,
/// hashed bsi hash, hashed legacy key; ARGV: the BSI. Returns 1 when it moved something.
const CONVERT: &str = r"
local f = redis.call('HMGET', KEYS[1], 'legacy_id', 'legacy_username', 'legacy_org', 'created_at', 'source')
if not f[1] then return 0 end
if redis.call('EXISTS', KEYS[3]) == 0 then
  redis.call('HSET', KEYS[3], 'legacy_id', f[1], 'legacy_username', f[2] or '', 'legacy_org', f[3] or '', 'created_at', f[4] or '0', 'source', f[5] or '')
  redis.call('SET', KEYS[4], ARGV[1])
end
redis.call('DEL', KEYS[1])
redis.call('DEL', KEYS[2])
return 1
";

/// Names keys under one derived key.
pub(super) struct Namer {
    key: hmac::Key,
}

impl Namer {
    fn hash(&self, kind: &str, id: &str) -> String {
        let mut ctx = hmac::Context::with_key(&self.key);
        // Length-prefixed: ("ab","c") and ("a","bc") never collide.
        for field in [kind, id] {
            ctx.update(&(field.len() as u64).to_be_bytes());
            ctx.update(field.as_bytes());
        }
        ctx.sign().as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The hash of a BSI's link: `bh:<HMAC>`.
    pub(super) fn bsi(&self, space: &str, bsi: &str) -> String {
        format!("{space}bh:{}", self.hash("bsi", bsi))
    }

    /// The key naming a legacy id's BSI: `lh:<HMAC>`.
    pub(super) fn legacy(&self, space: &str, id: &str) -> String {
        format!("{space}lh:{}", self.hash("legacy", id))
    }
}

impl RedisLinks {
    fn kid_key(&self) -> String {
        format!("{}kid", self.space)
    }

    /// The namer of this store (read once per process; see the module documentation).
    pub(super) async fn names(&self, conn: &mut Conn) -> Result<&Namer, LinkError> {
        self.namer.get_or_try_init(|| self.first_names(conn)).await
    }

    async fn first_names(&self, conn: &mut Conn) -> Result<Namer, LinkError> {
        let get_kid = redis::cmd("GET").arg(self.kid_key()).clone();
        let mut kid: Option<String> = get_kid.query_async(conn).await.map_err(|e| self.failed(e))?;
        if kid.is_none() {
            let (first, key) =
                self.keys.first().ok_or_else(|| LinkError::Storage("no session key to name links with".into()))?;
            self.convert(conn, &Namer { key: key.clone() }).await?;
            let _: Option<String> = redis::cmd("SET")
                .arg(self.kid_key())
                .arg(first)
                .arg("NX")
                .query_async(conn)
                .await
                .map_err(|e| self.failed(e))?;
            // Another instance may have set it first: use what is stored.
            kid = get_kid.query_async(conn).await.map_err(|e| self.failed(e))?;
        }
        let kid = kid.unwrap_or_default();
        match self.keys.iter().find(|(id, _)| *id == kid) {
            Some((_, key)) => Ok(Namer { key: key.clone() }),
            None => Err(LinkError::Storage(format!(
                "account links in Redis are named with session key {kid:?}, which is not in [session] keys: keep it there"
            ))),
        }
    }

    /// Converts every link stored under raw names (earlier versions) to `namer`'s names.
    async fn convert(&self, conn: &mut Conn, namer: &Namer) -> Result<(), LinkError> {
        let all: Vec<String> =
            redis::cmd("SMEMBERS").arg(self.all_key()).query_async(conn).await.map_err(|e| self.failed(e))?;
        let script = Script::new(CONVERT);
        let mut moved = 0u64;
        for bsi in all {
            let raw = format!("{}b:{bsi}", self.space);
            let legacy: Option<String> =
                redis::cmd("HGET").arg(&raw).arg("legacy_id").query_async(conn).await.map_err(|e| self.failed(e))?;
            let Some(legacy) = legacy else { continue };
            let done: u64 = script
                .key(&raw)
                .key(format!("{}l:{legacy}", self.space))
                .key(namer.bsi(&self.space, &bsi))
                .key(namer.legacy(&self.space, &legacy))
                .arg(&bsi)
                .invoke_async(conn)
                .await
                .map_err(|e| self.failed(e))?;
            moved += done;
        }
        if moved > 0 {
            tracing::info!(links = moved, "account links in Redis renamed: keyed hashes instead of ids in key names");
        }
        Ok(())
    }
}
