//! The Redis store's [`LogoutStore`], shared by every instance:
//!
//! - `n:<hex HMAC of (provider, NameID)>`: the subject the NameID logged in as, sealed like a
//!   session record (kind `name-id`, bound to this key), `SET … PX` for as long as the login's
//!   session can live. The name is an HMAC under the session key and the value is encrypted:
//!   NameIDs and subjects are personal data. Looked up under every key of the ring, so a login
//!   before a key rotation is still found.
//! - `x:<hex HMAC of (provider, ID)>`: a LogoutRequest this gateway sent, `SET … PX` for as long
//!   as its answer is awaited, taken with `DEL` (the first answer at any instance takes it, a
//!   replay finds nothing).
//!
//! Single-key commands only, so the names carry no hash tag ([`super::keys::KeyNames::plain`]):
//! each command works on a Redis Cluster, whatever slot its key is in.

use std::time::Duration;

use async_trait::async_trait;

use super::{hex, RedisStore};
use crate::session::record::RecordKind;
use crate::session::slo::LogoutStore;
use crate::session::{StoreError, StoreKey};

/// Index-name kinds (part of the HMAC input, so the two spaces never share a name).
const NAME_ID: &str = "saml-name-id";
const SENT: &str = "saml-logout-sent";

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl RedisStore {
    fn name_id_key(&self, name: &[u8; 32]) -> String {
        self.names.plain(&format!("n:{}", hex(name)))
    }

    fn sent_key(&self, name: &[u8; 32]) -> String {
        self.names.plain(&format!("x:{}", hex(name)))
    }

    fn no_key() -> StoreError {
        StoreError::Unavailable("no session key to name single-logout records".into())
    }
}

#[async_trait]
impl LogoutStore for RedisStore {
    async fn remember_name_id(
        &self,
        provider: &str,
        name_id: &str,
        subject: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let name = self.keys.index_name(NAME_ID, provider, name_id).ok_or_else(RedisStore::no_key)?;
        let record = self
            .keys
            .seal(RecordKind::NameId, &StoreKey(name), b"", subject.as_bytes())
            .ok_or_else(RedisStore::no_key)?;
        let mut conn = self.conn().await?;
        redis::cmd("SET")
            .arg(self.name_id_key(&name))
            .arg(record)
            .arg("PX")
            .arg(ms(ttl))
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| self.failed(e))
    }

    async fn subject_of_name_id(&self, provider: &str, name_id: &str) -> Result<Option<String>, StoreError> {
        let mut conn = self.conn().await?;
        for name in self.keys.index_names(NAME_ID, provider, name_id) {
            let record: Option<Vec<u8>> = redis::cmd("GET")
                .arg(self.name_id_key(&name))
                .query_async(&mut conn)
                .await
                .map_err(|e| self.failed(e))?;
            let Some(record) = record else { continue };
            match self.keys.open(RecordKind::NameId, &StoreKey(name), &record, 0) {
                Ok(plain) => match String::from_utf8(plain) {
                    Ok(subject) => return Ok(Some(subject)),
                    Err(_) => tracing::warn!("NameID record does not decode"),
                },
                // A foreign or tampered record names nobody.
                Err(e) => tracing::warn!(error = %e, "NameID record refused"),
            }
        }
        Ok(None)
    }

    async fn logout_sent(&self, provider: &str, id: &str, ttl: Duration) -> Result<(), StoreError> {
        let name = self.keys.index_name(SENT, provider, id).ok_or_else(RedisStore::no_key)?;
        let mut conn = self.conn().await?;
        redis::cmd("SET")
            .arg(self.sent_key(&name))
            .arg("1")
            .arg("PX")
            .arg(ms(ttl))
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| self.failed(e))
    }

    async fn take_logout_sent(&self, provider: &str, id: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn().await?;
        // One `DEL` per name (under every key of the ring): single-key commands.
        for name in self.keys.index_names(SENT, provider, id) {
            let deleted: u64 =
                redis::cmd("DEL").arg(self.sent_key(&name)).query_async(&mut conn).await.map_err(|e| self.failed(e))?;
            if deleted > 0 {
                return Ok(true);
            }
        }
        Ok(false)
    }
}
