//! What a session costs in memory: the estimate behind `aisgate_session_store_bytes`.
//!
//! The memory store keeps every session in process memory, bounded by `max_sessions`; an
//! operator sizing a host (and a change that makes sessions bigger) needs the cost per
//! session, not only the count. [`Footprint::heap_bytes`] adds up what a value owns on the
//! heap — string and vector capacities, attribute slices, boxed parts — each allocation rounded up
//! to the allocator's 16-byte granule; inline sizes come from `size_of`. Shared data (names
//! interned from the configuration, see [`super::names`]) is not counted per session: it is
//! paid once per process.
//!
//! It is an estimate, checked against reality by `examples/session_memory.rs` (a counting
//! allocator and the process RSS, `bench/sessions.sh`): allocator metadata and fragmentation
//! are not in it.

use std::sync::Arc;

use crate::identity::{AgendaRole, Attributes, Identity, LegacyAccount, Organisation, PersonalData};
use crate::provider::saml::logout::LogoutSubject;
use crate::provider::LogoutState;

/// The allocation granule assumed for every heap block (mimalloc's small size classes are
/// multiples of 8 or 16 bytes).
const GRANULE: usize = 16;

/// Bytes the allocator hands out for a request of `n` bytes (0 for no allocation).
pub(crate) fn block(n: usize) -> usize {
    n.div_ceil(GRANULE) * GRANULE
}

/// What a value owns on the heap (not its inline size, which its container counts), and
/// dropping its spare capacity.
pub(crate) trait Footprint {
    /// Bytes on the heap owned by `self`, allocator granules included.
    fn heap_bytes(&self) -> usize;
    /// Drops spare capacity (parsers and builders leave some; a session keeps its identity
    /// for hours).
    fn shrink(&mut self);
}

impl Footprint for String {
    fn heap_bytes(&self) -> usize {
        block(self.capacity())
    }
    fn shrink(&mut self) {
        self.shrink_to_fit();
    }
}

/// Interned: paid once per process, not per session.
impl Footprint for Arc<str> {
    fn heap_bytes(&self) -> usize {
        0
    }
    fn shrink(&mut self) {}
}

impl<T: Footprint> Footprint for Option<T> {
    fn heap_bytes(&self) -> usize {
        self.as_ref().map_or(0, T::heap_bytes)
    }
    fn shrink(&mut self) {
        if let Some(value) = self {
            value.shrink();
        }
    }
}

impl<T: Footprint> Footprint for Box<T> {
    fn heap_bytes(&self) -> usize {
        block(std::mem::size_of::<T>()) + T::heap_bytes(self)
    }
    fn shrink(&mut self) {
        T::shrink(self);
    }
}

impl<T: Footprint> Footprint for Vec<T> {
    fn heap_bytes(&self) -> usize {
        block(self.capacity() * std::mem::size_of::<T>()) + self.iter().map(T::heap_bytes).sum::<usize>()
    }
    fn shrink(&mut self) {
        self.iter_mut().for_each(T::shrink);
        self.shrink_to_fit();
    }
}

/// One exactly sized slice of `(name, values)` pairs (see [`Attributes`]); emptied, it holds
/// no allocation.
impl Footprint for Attributes {
    fn heap_bytes(&self) -> usize {
        block(self.slice_bytes()) + self.iter().map(|(k, v)| k.heap_bytes() + v.heap_bytes()).sum::<usize>()
    }
    fn shrink(&mut self) {
        for (name, values) in self.values_mut() {
            name.shrink();
            values.shrink();
        }
    }
}

/// [`Footprint`] of a struct from one list of its fields: those owning heap memory, then
/// the plain ones. Destructured without `..`: a new field that is not listed does not
/// compile.
macro_rules! footprint_of {
    ($type:ident { $($field:ident),* $(,)? } plain { $($plain:ident),* $(,)? }) => {
        impl Footprint for $type {
            fn heap_bytes(&self) -> usize {
                let $type { $($field,)* $($plain: _,)* } = self;
                0 $(+ $field.heap_bytes())*
            }
            fn shrink(&mut self) {
                let $type { $($field,)* $($plain: _,)* } = self;
                $($field.shrink();)*
            }
        }
    };
}

footprint_of!(AgendaRole { agenda, role } plain {});
footprint_of!(Organisation { ico, code, name, email, ovm_id, spuu_id, institution_type } plain { kind });
footprint_of!(PersonalData { birth_date, birth_place, birth_country, death_date, documents, address } plain {});
footprint_of!(LegacyAccount { id, username, organisation } plain {});
footprint_of!(LogoutSubject { name_id, format, name_qualifier, sp_name_qualifier, session_index } plain {});
footprint_of!(Identity {
    provider, protocol, subject, username, given_name, family_name, title_before, title_after, email, phone,
    organisation, access_roles, agenda_roles, auth_method, personal, attributes, legacy,
} plain { loa, identity_verified, authenticated_at, expires_at, no_personal_data });

/// The ID token packed in one allocation, the client id interned: no spare capacity.
impl Footprint for crate::provider::oidc::LogoutHint {
    fn heap_bytes(&self) -> usize {
        crate::provider::oidc::LogoutHint::heap_bytes(self)
    }
    fn shrink(&mut self) {}
}

impl Footprint for LogoutState {
    fn heap_bytes(&self) -> usize {
        match self {
            LogoutState::None => 0,
            LogoutState::Saml(subject) => subject.heap_bytes(),
            LogoutState::Oidc(hint) => hint.heap_bytes(),
        }
    }
    fn shrink(&mut self) {
        match self {
            LogoutState::None => {}
            LogoutState::Saml(subject) => subject.shrink(),
            LogoutState::Oidc(hint) => hint.shrink(),
        }
    }
}
