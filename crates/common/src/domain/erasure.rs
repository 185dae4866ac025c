//! How far an erasure got, and the tombstone that is all that stays of an erased user.

/// How far an erasure got, kept in the user's tombstone so that a retry resumes where the last
/// attempt stopped and repeats no call that already succeeded. Ordered: each stage implies the
/// ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ErasureStage {
    /// Stripe is closed (subscriptions canceled, customers deleted); the tombstone now bars the
    /// user; stored items may remain.
    StripeClosed,
    /// Every stored item of the user is gone; the login may remain.
    StoredErased,
    /// The login at the auth service is gone too: the erasure is complete.
    LoginDeleted,
}

impl ErasureStage {
    /// The stored name of the stage.
    pub fn as_str(self) -> &'static str {
        match self {
            ErasureStage::StripeClosed => "stripe_closed",
            ErasureStage::StoredErased => "stored_erased",
            ErasureStage::LoginDeleted => "login_deleted",
        }
    }

    /// The stage of a stored name. A tombstone without one predates stages: its erasure emptied
    /// the table (it was written, then everything deleted, in one call).
    pub fn parse(name: Option<&str>) -> Option<Self> {
        match name {
            Some("stripe_closed") => Some(ErasureStage::StripeClosed),
            Some("stored_erased") | None => Some(ErasureStage::StoredErased),
            Some("login_deleted") => Some(ErasureStage::LoginDeleted),
            Some(_) => None,
        }
    }
}

/// What is kept of an erased user: a hash of the id (the key), times and the erasure's stage;
/// no personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tombstone {
    /// When the erasure began, Unix seconds.
    pub erased_at: i64,
    /// When the tombstone expires (TTL), Unix seconds.
    pub expires_at: i64,
    /// How far the erasure got.
    pub stage: ErasureStage,
}
