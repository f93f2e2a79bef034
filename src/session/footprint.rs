//! What a session costs in memory: the estimate behind `aisgate_session_store_bytes`.
//!
//! The memory store keeps every session in process memory, bounded by `max_sessions`; an
//! operator sizing a host (and a change that makes sessions bigger) needs the cost per
//! session, not only the count. [`Footprint::heap_bytes`] adds up what a value owns on the
//! heap — string and vector capacities, map nodes, boxed parts — each allocation rounded up
//! to the allocator's 16-byte granule; inline sizes come from `size_of`. Shared data (names
//! interned from the configuration, see [`super::names`]) is not counted per session: it is
//! paid once per process.
//!
//! It is an estimate, checked against reality by `examples/session_memory.rs` (a counting
//! allocator and the process RSS, `bench/sessions.sh`): allocator metadata and fragmentation
//! are not in it.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::identity::{AgendaRole, Identity, LegacyAccount, Organisation, PersonalData};
use crate::provider::LogoutState;

/// The allocation granule assumed for every heap block (mimalloc's small size classes are
/// multiples of 8 or 16 bytes).
const GRANULE: usize = 16;

/// Bytes the allocator hands out for a request of `n` bytes (0 for no allocation).
pub(crate) fn block(n: usize) -> usize {
    n.div_ceil(GRANULE) * GRANULE
}

/// Heap bytes a value owns (not its inline size, which its container counts).
pub(crate) trait Footprint {
    /// Bytes on the heap owned by `self`, allocator granules included.
    fn heap_bytes(&self) -> usize;
}

impl Footprint for String {
    fn heap_bytes(&self) -> usize {
        block(self.capacity())
    }
}

impl Footprint for Box<str> {
    fn heap_bytes(&self) -> usize {
        block(self.len())
    }
}

/// Interned: paid once per process, not per session.
impl Footprint for Arc<str> {
    fn heap_bytes(&self) -> usize {
        0
    }
}

impl<T: Footprint> Footprint for Option<T> {
    fn heap_bytes(&self) -> usize {
        self.as_ref().map_or(0, T::heap_bytes)
    }
}

impl<T: Footprint> Footprint for Box<T> {
    fn heap_bytes(&self) -> usize {
        block(std::mem::size_of::<T>()) + T::heap_bytes(self)
    }
}

impl<T: Footprint> Footprint for Vec<T> {
    fn heap_bytes(&self) -> usize {
        block(self.capacity() * std::mem::size_of::<T>()) + self.iter().map(T::heap_bytes).sum::<usize>()
    }
}

impl<T: Footprint> Footprint for Box<[T]> {
    fn heap_bytes(&self) -> usize {
        block(std::mem::size_of_val::<[T]>(self)) + self.iter().map(T::heap_bytes).sum::<usize>()
    }
}

/// A B-tree keeps up to 11 entries per node, one allocation per node: a leaf holds 11 keys
/// and 11 values whatever its fill, an internal node 12 child pointers more.
impl<K: Footprint, V: Footprint> Footprint for BTreeMap<K, V> {
    fn heap_bytes(&self) -> usize {
        const CAPACITY: usize = 11;
        if self.is_empty() {
            return 0;
        }
        let leaf = 16 + CAPACITY * (std::mem::size_of::<K>() + std::mem::size_of::<V>());
        // After inserts in key order leaves are about half full; fewer than 12 entries: one leaf.
        let leaves = if self.len() <= CAPACITY { 1 } else { self.len().div_ceil(CAPACITY / 2 + 1) };
        let internal =
            if leaves > 1 { leaves.div_ceil(CAPACITY / 2 + 1) * block(leaf + 8 * (CAPACITY + 1)) } else { 0 };
        leaves * block(leaf) + internal + self.iter().map(|(k, v)| k.heap_bytes() + v.heap_bytes()).sum::<usize>()
    }
}

impl Footprint for AgendaRole {
    fn heap_bytes(&self) -> usize {
        self.agenda.heap_bytes() + self.role.heap_bytes()
    }
}

impl Footprint for Organisation {
    fn heap_bytes(&self) -> usize {
        let Organisation { ico, code, name, email, kind: _, ovm_id, spuu_id, institution_type } = self;
        [ico, code, name, email, ovm_id, spuu_id, institution_type].iter().map(|s| s.heap_bytes()).sum()
    }
}

impl Footprint for PersonalData {
    fn heap_bytes(&self) -> usize {
        let PersonalData { birth_date, birth_place, birth_country, death_date, documents, address } = self;
        [birth_date, birth_place, birth_country, death_date, address].iter().map(|s| s.heap_bytes()).sum::<usize>()
            + documents.heap_bytes()
    }
}

impl Footprint for LegacyAccount {
    fn heap_bytes(&self) -> usize {
        self.id.heap_bytes() + self.username.heap_bytes() + self.organisation.heap_bytes()
    }
}

impl Footprint for Identity {
    fn heap_bytes(&self) -> usize {
        // Destructured: a new field that is not counted here does not compile.
        let Identity {
            provider,
            protocol,
            subject,
            username,
            given_name,
            family_name,
            title_before,
            title_after,
            email,
            phone,
            organisation,
            access_roles,
            agenda_roles,
            loa: _,
            auth_method,
            identity_verified: _,
            authenticated_at: _,
            expires_at: _,
            personal,
            no_personal_data: _,
            attributes,
            legacy,
        } = self;
        let strings = [username, given_name, family_name, title_before, title_after, email, phone, auth_method];
        provider.heap_bytes()
            + protocol.heap_bytes()
            + subject.heap_bytes()
            + strings.iter().map(|s| s.heap_bytes()).sum::<usize>()
            + organisation.heap_bytes()
            + access_roles.heap_bytes()
            + agenda_roles.heap_bytes()
            + personal.heap_bytes()
            + attributes.heap_bytes()
            + legacy.heap_bytes()
    }
}

impl Footprint for LogoutState {
    fn heap_bytes(&self) -> usize {
        match self {
            LogoutState::None => 0,
            LogoutState::Saml(s) => {
                block(std::mem::size_of_val::<crate::provider::saml::logout::LogoutSubject>(s))
                    + s.name_id.heap_bytes()
                    + s.format.heap_bytes()
                    + s.name_qualifier.heap_bytes()
                    + s.sp_name_qualifier.heap_bytes()
                    + s.session_index.heap_bytes()
            }
            LogoutState::Oidc(hint) => {
                block(std::mem::size_of_val::<crate::provider::oidc::LogoutHint>(hint)) + hint.heap_bytes()
            }
        }
    }
}

/// Drops spare capacity from every string and list of `identity` (parsers and builders
/// leave some; a session keeps its identity for hours).
pub(crate) fn shrink(identity: &mut Identity) {
    fn opt(s: &mut Option<String>) {
        if let Some(s) = s {
            s.shrink_to_fit();
        }
    }
    fn list(v: &mut Vec<String>) {
        v.iter_mut().for_each(String::shrink_to_fit);
        v.shrink_to_fit();
    }
    let Identity {
        provider,
        protocol,
        subject,
        username,
        given_name,
        family_name,
        title_before,
        title_after,
        email,
        phone,
        organisation,
        access_roles,
        agenda_roles,
        loa: _,
        auth_method,
        identity_verified: _,
        authenticated_at: _,
        expires_at: _,
        personal,
        no_personal_data: _,
        attributes,
        legacy,
    } = identity;
    for s in [provider, protocol, subject] {
        s.shrink_to_fit();
    }
    for s in [username, given_name, family_name, title_before, title_after, email, phone, auth_method] {
        opt(s);
    }
    if let Some(o) = organisation {
        for s in [&mut o.ico, &mut o.code, &mut o.name, &mut o.email, &mut o.ovm_id, &mut o.spuu_id] {
            opt(s);
        }
        opt(&mut o.institution_type);
    }
    list(access_roles);
    for role in agenda_roles.iter_mut() {
        role.agenda.shrink_to_fit();
        role.role.shrink_to_fit();
    }
    agenda_roles.shrink_to_fit();
    if let Some(p) = personal {
        for s in [&mut p.birth_date, &mut p.birth_place, &mut p.birth_country, &mut p.death_date, &mut p.address] {
            opt(s);
        }
        list(&mut p.documents);
    }
    attributes.values_mut().for_each(list);
    if let Some(l) = legacy {
        l.id.shrink_to_fit();
        opt(&mut l.username);
        opt(&mut l.organisation);
    }
}

/// [`shrink`] for the logout state.
pub(crate) fn shrink_logout(state: &mut LogoutState) {
    match state {
        LogoutState::None => {}
        LogoutState::Saml(s) => {
            s.name_id.shrink_to_fit();
            let optional = [&mut s.format, &mut s.name_qualifier, &mut s.sp_name_qualifier, &mut s.session_index];
            optional.into_iter().flatten().for_each(String::shrink_to_fit);
        }
        LogoutState::Oidc(hint) => hint.shrink_to_fit(),
    }
}
