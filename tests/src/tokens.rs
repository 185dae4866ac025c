//! Access tokens shaped like the auth provider's (Supabase: `sub` UUID, `aud`, `iss`, `exp`):
//! the workspace's one source, `common::testing`.

pub use common::testing::{
    ES256_KID, EVENTS_ISSUER, EVENTS_SECRET, EVENTS_USER, claims, es256, hs256, new_user,
};
