//! The Redis link store, for several gateway instances: the same Redis as the sessions
//! (`[session.redis]`, its connection, Sentinel and TLS settings and `key_prefix`).
//!
//! Keys, all in one hash slot (`{links}`, so Redis Cluster runs the scripts too), named by
//! keyed hashes, never by the ids themselves (see [`names`]):
//! - `<prefix>{links}:bh:<HMAC of the bsi>` — hash `legacy_id`, `legacy_username`,
//!   `legacy_org`, `created_at`, `source`;
//! - `<prefix>{links}:lh:<HMAC of the legacy id>` — the BSI;
//! - `<prefix>{links}:all` — set of every linked BSI (list, export);
//! - `<prefix>{links}:kid` — the session key the names are made with.
//!
//! Uniqueness of both sides is checked and written inside one Lua script per change, so two
//! instances linking the same legacy id at once cannot both succeed. Links have no TTL: Redis
//! must persist them (AOF or RDB, see README, "Backups").

use std::sync::Arc;

use async_trait::async_trait;
use redis::Script;

mod names;

use super::{Link, LinkError, LinkKey, LinkStore};
use crate::identity::LegacyAccount;
use crate::session::redis::backend::{Backend, Conn};

/// Creates one link. KEYS: bsi hash, legacy key, set; ARGV: bsi, legacy id, username, org,
/// created_at, source. Returns 1 (created), 0 (identical exists), -1 (BSI taken), -2 (legacy taken).
const CREATE: &str = r"
local cur = redis.call('HGET', KEYS[1], 'legacy_id')
if cur then
  if cur == ARGV[2] then return 0 end
  return -1
end
if redis.call('EXISTS', KEYS[2]) == 1 then return -2 end
redis.call('HSET', KEYS[1], 'legacy_id', ARGV[2], 'legacy_username', ARGV[3], 'legacy_org', ARGV[4], 'created_at', ARGV[5], 'source', ARGV[6])
redis.call('SET', KEYS[2], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
return 1
";

/// Imports a batch, all or nothing. KEYS: set, then per link its bsi hash and legacy key;
/// ARGV: per link the six CREATE arguments. Checks every link first (returns {i, code} for
/// the first refused, 1-based), then writes. Returns {0, added} on success.
const IMPORT: &str = r"
local n = (#KEYS - 1) / 2
local seen_b, seen_l = {}, {}
local new = {}
for i = 1, n do
  local b, l = KEYS[2 * i], KEYS[2 * i + 1]
  local a = (i - 1) * 6
  local cur = redis.call('HGET', b, 'legacy_id')
  if cur then
    if cur ~= ARGV[a + 2] then return {i, -1} end
    new[i] = false
  else
    if redis.call('EXISTS', l) == 1 or seen_l[l] then return {i, -2} end
    if seen_b[b] then return {i, -1} end
    new[i] = true
  end
  seen_b[b] = true
  seen_l[l] = true
end
local added = 0
for i = 1, n do
  if new[i] then
    local a = (i - 1) * 6
    redis.call('HSET', KEYS[2 * i], 'legacy_id', ARGV[a + 2], 'legacy_username', ARGV[a + 3], 'legacy_org', ARGV[a + 4], 'created_at', ARGV[a + 5], 'source', ARGV[a + 6])
    redis.call('SET', KEYS[2 * i + 1], ARGV[a + 1])
    redis.call('SADD', KEYS[1], ARGV[a + 1])
    added = added + 1
  end
end
return {0, added}
";

/// Deletes the link of a BSI to a legacy id, both as read just before (the key names are
/// hashes: the script cannot derive one from the other). KEYS: the set of every link (its
/// slot routes the script in a cluster), the bsi hash, the legacy key; ARGV: bsi, legacy id.
/// Returns {} (no such link any more) or {bsi, legacy_id, username, org, created_at, source}.
const DELETE: &str = r"
local f = redis.call('HMGET', KEYS[2], 'legacy_id', 'legacy_username', 'legacy_org', 'created_at', 'source')
if not f[1] or f[1] ~= ARGV[2] then return {} end
redis.call('DEL', KEYS[2])
redis.call('DEL', KEYS[3])
redis.call('SREM', KEYS[1], ARGV[1])
return {ARGV[1], f[1], f[2] or '', f[3] or '', f[4] or '0', f[5] or ''}
";

/// The Redis store.
pub struct RedisLinks {
    backend: Arc<Backend>,
    space: String,
    /// Keys derived from the session keys for naming ([`names`]), with their key ids.
    keys: Vec<(String, aws_lc_rs::hmac::Key)>,
    /// The names in use, once read from Redis.
    namer: tokio::sync::OnceCell<names::Namer>,
}

fn storage(e: redis::RedisError) -> LinkError {
    LinkError::Storage(format!("redis: {e}"))
}

fn opt(v: &str) -> Option<String> {
    (!v.is_empty()).then(|| v.to_owned())
}

fn args(link: &Link) -> [String; 6] {
    [
        link.bsi.clone(),
        link.legacy.id.clone(),
        link.legacy.username.clone().unwrap_or_default(),
        link.legacy.organisation.clone().unwrap_or_default(),
        link.created_at.to_string(),
        link.source.clone(),
    ]
}

fn from_fields(bsi: String, f: &[String]) -> Option<Link> {
    let [id, username, org, created, source] = f else { return None };
    Some(Link {
        bsi,
        legacy: LegacyAccount { id: id.clone(), username: opt(username), organisation: opt(org) },
        created_at: created.parse().unwrap_or(0),
        source: source.clone(),
    })
}

impl RedisLinks {
    /// A store on the sessions' Redis (`[session.redis]`), its key names made with the session
    /// keys (`[session] keys`).
    pub fn configured(
        session: &crate::config::SessionConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<RedisLinks, LinkError> {
        let cfg =
            session.redis.as_ref().ok_or(LinkError::Storage("store = \"redis\" needs [session.redis]".to_owned()))?;
        if !crate::session::redis::keys::prefix_ok(&cfg.key_prefix) {
            return Err(LinkError::Storage(crate::session::redis::RedisSetupError::BracesInPrefix.to_string()));
        }
        let keyring = crate::session::keyring::Keyring::load(&session.keys, env)
            .map_err(|e| LinkError::Storage(format!("[session] keys: {e}")))?;
        let backend = Backend::new(cfg, env).map_err(|e| LinkError::Storage(e.to_string()))?;
        let space = crate::session::redis::keys::KeyNames::new(&cfg.key_prefix).links_space();
        Ok(RedisLinks {
            backend: Arc::new(backend),
            space,
            keys: keyring.derived_keys(names::LABEL),
            namer: tokio::sync::OnceCell::new(),
        })
    }

    async fn conn(&self) -> Result<Conn, LinkError> {
        self.backend.conn().await.map_err(|e| self.failed(e))
    }

    fn failed(&self, e: redis::RedisError) -> LinkError {
        self.backend.failed(&e);
        storage(e)
    }

    fn all_key(&self) -> String {
        format!("{}all", self.space)
    }

    async fn fields(&self, conn: &mut Conn, bsi: &str) -> Result<Option<Link>, LinkError> {
        let name = self.names(conn).await?.bsi(&self.space, bsi);
        let f: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(name)
            .arg(&["legacy_id", "legacy_username", "legacy_org", "created_at", "source"])
            .query_async(conn)
            .await
            .map_err(|e| self.failed(e))?;
        if f.first().is_none_or(Option::is_none) {
            return Ok(None);
        }
        let f: Vec<String> = f.into_iter().map(Option::unwrap_or_default).collect();
        Ok(from_fields(bsi.to_owned(), &f))
    }
}

#[async_trait]
impl LinkStore for RedisLinks {
    async fn by_bsi(&self, bsi: &str) -> Result<Option<Link>, LinkError> {
        let mut conn = self.conn().await?;
        self.fields(&mut conn, bsi).await
    }

    async fn create(&self, link: Link) -> Result<(), LinkError> {
        link.validate()?;
        let mut conn = self.conn().await?;
        let names = self.names(&mut conn).await?;
        let code: i64 = Script::new(CREATE)
            .key(names.bsi(&self.space, &link.bsi))
            .key(names.legacy(&self.space, &link.legacy.id))
            .key(self.all_key())
            .arg(&args(&link)[..])
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.failed(e))?;
        match code {
            -1 => Err(LinkError::BsiTaken),
            -2 => Err(LinkError::LegacyTaken),
            _ => Ok(()),
        }
    }

    async fn delete(&self, key: LinkKey) -> Result<Option<Link>, LinkError> {
        let mut conn = self.conn().await?;
        let names = self.names(&mut conn).await?;
        // Both sides of the link, read first: each name is a hash of its own id.
        let (bsi, legacy) = match &key {
            LinkKey::Bsi(bsi) => {
                let name = names.bsi(&self.space, bsi);
                let legacy: Option<String> = redis::cmd("HGET")
                    .arg(name)
                    .arg("legacy_id")
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| self.failed(e))?;
                (bsi.clone(), legacy)
            }
            LinkKey::Legacy(id) => {
                let name = names.legacy(&self.space, id);
                let bsi: Option<String> =
                    redis::cmd("GET").arg(name).query_async(&mut conn).await.map_err(|e| self.failed(e))?;
                let Some(bsi) = bsi else { return Ok(None) };
                (bsi, Some(id.clone()))
            }
        };
        let Some(legacy) = legacy else { return Ok(None) };
        let found: Vec<String> = Script::new(DELETE)
            .key(self.all_key())
            .key(names.bsi(&self.space, &bsi))
            .key(names.legacy(&self.space, &legacy))
            .arg(&bsi)
            .arg(&legacy)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.failed(e))?;
        Ok(match found.split_first() {
            Some((bsi, rest)) => from_fields(bsi.clone(), rest),
            None => None,
        })
    }

    async fn list(&self) -> Result<Vec<Link>, LinkError> {
        let mut conn = self.conn().await?;
        let mut all: Vec<String> =
            redis::cmd("SMEMBERS").arg(self.all_key()).query_async(&mut conn).await.map_err(|e| self.failed(e))?;
        all.sort();
        let mut out = Vec::with_capacity(all.len());
        for bsi in all {
            if let Some(link) = self.fields(&mut conn, &bsi).await? {
                out.push(link);
            }
        }
        Ok(out)
    }

    async fn import(&self, links: Vec<Link>, lines: Vec<usize>) -> Result<usize, LinkError> {
        for (i, link) in links.iter().enumerate() {
            let line = lines.get(i).copied().unwrap_or(i + 1);
            link.validate().map_err(|e| LinkError::Import { line, reason: e.to_string() })?;
        }
        if links.is_empty() {
            return Ok(0);
        }
        let mut conn = self.conn().await?;
        let names = self.names(&mut conn).await?;
        let import = Script::new(IMPORT);
        let mut script = import.key(self.all_key());
        for link in &links {
            script
                .key(names.bsi(&self.space, &link.bsi))
                .key(names.legacy(&self.space, &link.legacy.id))
                .arg(&args(link)[..]);
        }
        let (at, value): (usize, i64) = script.invoke_async(&mut conn).await.map_err(|e| self.failed(e))?;
        if at == 0 {
            return Ok(usize::try_from(value).unwrap_or(0));
        }
        let line = lines.get(at - 1).copied().unwrap_or(at);
        let reason = if value == -1 { LinkError::BsiTaken } else { LinkError::LegacyTaken };
        Err(LinkError::Import { line, reason: reason.to_string() })
    }
}
