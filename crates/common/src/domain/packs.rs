//! Credit packs: what is sold once ([`Packs`], each a one-time Stripe price granting purchased
//! credits), the Checkout sessions this service opened for them ([`PendingPack`]), and the rule
//! that grants one: once per session, only for a session this service opened.

use super::clawbacks::Purchase;
use super::entries::{Entry, EntryKind};
use super::ledger::Balance;
use super::plans::{Catalogue, CatalogueError, PlanId};
use super::postings::Posting;
use super::user::UserRecord;

/// A pack's id (`small`, `large`): the same form as a plan's.
pub type PackId = PlanId;

/// One pack: a one-time Stripe price and the purchased credits it grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pack {
    /// Its id, as `{"pack": id}` names it.
    pub id: PackId,
    /// Its one-time Stripe price (`price_...`).
    pub price_id: String,
    /// The purchased credits it grants (1 to [`Catalogue::MAX_CREDITS`]).
    pub credits: i64,
}

/// The packs sold, in their configured order (none: no pack is sold).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Packs {
    packs: Vec<Pack>,
}

/// A pack checkout asked for a pack that is not sold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no such pack is sold")]
pub struct UnknownPack;

impl Packs {
    /// The packs of `packs`: ids unique, prices unique and none a price of `plans` (a price
    /// is a plan's or a pack's, never both), credits 1 to [`Catalogue::MAX_CREDITS`].
    pub fn new(packs: Vec<Pack>, plans: &Catalogue) -> Result<Packs, CatalogueError> {
        let mut ids: Vec<&PackId> = packs.iter().map(|pack| &pack.id).collect();
        ids.sort();
        if ids.windows(2).any(|pair| pair[0] == pair[1]) {
            return Err(CatalogueError::DuplicateId);
        }
        let mut prices: Vec<&str> = packs.iter().map(|pack| pack.price_id.as_str()).collect();
        prices.sort_unstable();
        let reused = prices.windows(2).any(|pair| pair[0] == pair[1]);
        if reused || prices.iter().any(|price| plans.for_price(price).is_some()) {
            return Err(CatalogueError::DuplicatePrice);
        }
        if packs
            .iter()
            .any(|pack| !(1..=Catalogue::MAX_CREDITS).contains(&pack.credits))
        {
            return Err(CatalogueError::Credits);
        }
        Ok(Packs { packs })
    }

    /// Every pack sold, in order.
    pub fn sold(&self) -> impl Iterator<Item = &Pack> {
        self.packs.iter()
    }

    /// The pack a checkout asked for by `id`.
    pub fn to_sell(&self, id: &str) -> Result<&Pack, UnknownPack> {
        self.packs
            .iter()
            .find(|pack| pack.id.as_str() == id)
            .ok_or(UnknownPack)
    }
}

/// A pack's Checkout session this service opened for a user, kept on the user's record until it
/// is granted or can no longer be paid: only such a session grants anything, whatever Stripe or
/// an event says of others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingPack {
    /// `cs_...`.
    pub session_id: String,
    /// The pack it sells.
    pub pack: PackId,
    /// The credits it grants once paid (the pack's when it was opened).
    pub credits: i64,
    /// When it was opened, Unix seconds: the time of its `pack_purchase` entry.
    pub created_at: i64,
}

impl PendingPack {
    /// How long a session is kept while Stripe says it may still be paid: delayed payment
    /// methods (bank debits) settle days after the session completes.
    pub const KEPT_SECS: i64 = 30 * 86_400;

    /// How a record lists its pending sessions: oldest first, then by id.
    pub fn order(&self) -> (i64, &str) {
        (self.created_at, &self.session_id)
    }

    /// Whether it is kept no more at `now` (Unix seconds): older than [`PendingPack::KEPT_SECS`].
    pub fn stale_at(&self, now: i64) -> bool {
        now - self.created_at > Self::KEPT_SECS
    }
}

/// Why a paid pack session grants nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PackRefusal {
    /// The record holds no such session: granted before, or never opened here.
    #[error("no pending pack session of this id")]
    NotPending,
}

impl UserRecord {
    /// The grant of pending pack session `session`, paid by `payment_intent`: the pack's
    /// credits onto the purchased balance, once (the session leaves the record in the same
    /// write), whatever the subscription does.
    pub fn pack_purchase(
        &self,
        session: &str,
        payment_intent: Option<&str>,
    ) -> Result<Posting, PackRefusal> {
        let pending = self
            .pending_packs
            .iter()
            .find(|pending| pending.session_id == session)
            .ok_or(PackRefusal::NotPending)?;
        let seen = self.seen(Balance::Purchased);
        let mut entry = Entry::new(
            EntryKind::PackPurchase,
            Balance::Purchased,
            pending.credits,
            seen.before + pending.credits,
            pending.created_at,
            session,
        );
        entry.pack = Some(pending.pack.to_string());
        entry.payment_intent = payment_intent.map(str::to_owned);
        // What the pack's money bought, found by its PaymentIntent when a refund or a dispute
        // of it comes.
        let purchase = payment_intent.map(|intent| Purchase {
            revision: 1,
            ..Purchase::new(
                intent,
                Balance::Purchased,
                pending.credits,
                pending.created_at,
                0,
            )
        });
        Ok(Posting {
            entry,
            seen,
            grant: None,
            once: None,
            settles: Some(session.to_owned()),
            refundable_until: purchase.as_ref().and_then(|p| self.refundable_with(p)),
            purchase,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::plans::Plan;
    use crate::domain::postings::tests::subscriber;

    fn pack(id: &str, price: &str, credits: i64) -> Pack {
        Pack {
            id: PackId::parse(id).unwrap(),
            price_id: price.into(),
            credits,
        }
    }

    fn plans() -> Catalogue {
        let plus = Plan {
            id: PlanId::parse("plus").unwrap(),
            price_id: "price_plus".into(),
            credits: 1000,
            sold: true,
        };
        Catalogue::new(vec![plus], vec![]).unwrap()
    }

    #[test]
    fn packs_are_refused_with_a_shared_id_or_price_or_credits_out_of_range() {
        let cases = [
            (
                vec![pack("s", "price_1", 5), pack("s", "price_2", 6)],
                CatalogueError::DuplicateId,
            ),
            (
                vec![pack("s", "price_1", 5), pack("l", "price_1", 6)],
                CatalogueError::DuplicatePrice,
            ),
            (
                vec![pack("s", "price_plus", 5)],
                CatalogueError::DuplicatePrice,
            ),
            (vec![pack("s", "price_1", 0)], CatalogueError::Credits),
        ];
        for (packs, refusal) in cases {
            assert_eq!(Packs::new(packs, &plans()), Err(refusal));
        }
        let packs = Packs::new(vec![pack("s", "price_1", 500)], &plans()).unwrap();
        assert_eq!(packs.to_sell("s").map(|p| p.credits), Ok(500));
        assert_eq!(packs.to_sell("plus"), Err(UnknownPack));
    }

    #[test]
    fn a_pack_is_granted_once_only_for_a_session_opened_here() {
        let mut record = subscriber(40);
        record.purchased_credits = 7;
        record.pending_packs.push(PendingPack {
            session_id: "cs_1".into(),
            pack: PackId::parse("small").unwrap(),
            credits: 500,
            created_at: 1_800_000_000,
        });
        let posting = record.pack_purchase("cs_1", Some("pi_1")).unwrap();
        let entry = &posting.entry;
        assert_eq!(
            (entry.kind, entry.balance, entry.amount, entry.balance_after),
            (EntryKind::PackPurchase, Balance::Purchased, 500, 507)
        );
        assert_eq!(
            (entry.pack.as_deref(), entry.payment_intent.as_deref()),
            (Some("small"), Some("pi_1"))
        );
        assert_eq!(posting.settles.as_deref(), Some("cs_1"));
        assert_eq!(entry.description().unwrap(), "small pack");
        assert_eq!(
            record.pack_purchase("cs_other", None),
            Err(PackRefusal::NotPending)
        );
    }
}
