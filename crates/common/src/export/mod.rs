//! A user's own copy of what this service holds about them (`GET /v1/user/export`, GDPR
//! Articles 15 and 20): one JSON document of a stable, versioned schema (`docs/api.md`,
//! "Export"; its parts in [`schema`]), read from the user's partition page by page. Items other
//! services keep there are counted by kind, never copied: their owners export them.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::Rules;
use crate::domain::entries::rfc3339;
use crate::domain::{
    Entry, ErasureStage, Held, HeldDebit, HeldKey, Purchase, Tombstone, UserId, UserRecord,
};
use crate::error::ApiError;
use crate::history::EntryView;
use crate::store::{Erasures, Holdings};

mod schema;

pub use schema::{
    DebitExport, EntryExport, ErasureExport, KindCount, LinkedCustomer, PendingPackExport,
    ProfileExport, PurchaseExport, RulesExport, TakeExport, UserExport,
};

/// The version of the document's schema: raised on any change a reader could notice.
pub const SCHEMA_VERSION: u32 = 1;
/// The most items of this service one export answers (about 2.5 MB of JSON, inside Lambda's
/// 6 MB response limit; read in about 2 s on the emulator, see `docs/api.md`). A larger
/// partition answers 503 `EXPORT_TOO_LARGE` rather than a cut-off document.
pub const MAX_EXPORT_ITEMS: usize = 10_000;
/// The largest document answered: Lambda's response limit is 6 MB, and the JSON body is escaped
/// once more inside the function's response.
pub const MAX_EXPORT_BYTES: usize = 4_500_000;
/// Items per query page.
const PAGE_ITEMS: usize = 500;
/// Time kept back from the request's budget to build and send the document.
const ANSWER_RESERVE: Duration = Duration::from_secs(2);

/// Everything held of `user`, within `budget` ([`ANSWER_RESERVE`] of it kept to answer): 410
/// once the erasure has removed the stored items; 503 `EXPORT_TOO_LARGE` for a partition of
/// more than [`MAX_EXPORT_ITEMS`] of this service's items, a document over
/// [`MAX_EXPORT_BYTES`], or a partition too slow to read in time. An
/// account never seen here gets a document with no profile: nothing is created.
pub async fn export<S>(
    store: &S,
    user: &UserId,
    rules: &Rules,
    budget: Duration,
) -> Result<UserExport, ApiError>
where
    S: Holdings + Erasures + ?Sized,
{
    let tombstone = store.tombstone(user).await?;
    if tombstone.is_some_and(|t| t.stage >= ErasureStage::StoredErased) {
        return Err(ApiError::AccountDeleted);
    }
    let read = read_all(store, user);
    let held = tokio::time::timeout(budget.saturating_sub(ANSWER_RESERVE), read)
        .await
        .map_err(|_| {
            tracing::error!(user = %user.hash(), "export not read in time");
            ApiError::ExportTooLarge
        })??;
    let document = document(user, rules, tombstone, held);
    let bytes = serde_json::to_vec(&document).map_or(usize::MAX, |body| body.len());
    if bytes > MAX_EXPORT_BYTES {
        tracing::error!(user = %user.hash(), bytes, "export over its size limit");
        return Err(ApiError::ExportTooLarge);
    }
    Ok(document)
}

/// Every item of the partition, page by page, up to [`MAX_EXPORT_ITEMS`] of this service's.
async fn read_all<S: Holdings + ?Sized>(store: &S, user: &UserId) -> Result<Vec<Held>, ApiError> {
    let (mut held, mut after, mut ours) = (Vec::new(), None::<HeldKey>, 0);
    loop {
        let (page, next) = store.holdings(user, after.as_ref(), PAGE_ITEMS).await?;
        for item in page {
            if !matches!(item, Held::Other { .. }) {
                ours += 1;
            }
            held.push(item);
        }
        if ours > MAX_EXPORT_ITEMS {
            tracing::error!(user = %user.hash(), items = ours, "export over its size limit");
            return Err(ApiError::ExportTooLarge);
        }
        match next {
            Some(next) => after = Some(next),
            None => return Ok(held),
        }
    }
}

/// The document of the items `held` of `user`.
fn document(
    user: &UserId,
    rules: &Rules,
    tombstone: Option<Tombstone>,
    held: Vec<Held>,
) -> UserExport {
    let mut export = UserExport {
        schema_version: SCHEMA_VERSION,
        exported_at: rfc3339(crate::unix_now()),
        user_id: user.as_str().to_owned(),
        profile: None,
        stripe_customers: Vec::new(),
        ledger: Vec::new(),
        debits: Vec::new(),
        purchases: Vec::new(),
        adjustment_ids: Vec::new(),
        erasure: None,
        rules: RulesExport {
            free_messages_per_account: rules.free_messages,
            plan_credits_per_period: None,
        },
        held_by_other_services: Vec::new(),
    };
    let mut others: BTreeMap<String, usize> = BTreeMap::new();
    for item in held {
        match item {
            Held::Profile(record) => {
                export.stripe_customers = record
                    .stripe_customer_id
                    .iter()
                    .map(|id| LinkedCustomer {
                        id: id.clone(),
                        linked_at: record.customer_linked_at.map(rfc3339),
                    })
                    .collect();
                export.rules.plan_credits_per_period = record.period_credits;
                export.erasure = erasure_of(&record, tombstone);
                export.profile = Some(profile_of(&record));
            }
            Held::Entry(entry) => export.ledger.push(entry_of(&entry)),
            Held::Debit(debit) => export.debits.push(debit_of(debit)),
            Held::Marker { id } => export.adjustment_ids.push(id),
            Held::Purchase(purchase) => export.purchases.push(purchase_of(purchase)),
            Held::Other { kind } => *others.entry(kind).or_default() += 1,
        }
    }
    export.held_by_other_services = others
        .into_iter()
        .map(|(kind, count)| KindCount { kind, count })
        .collect();
    export
}

/// The profile section of `record` (also the operator tool's view of it).
pub fn profile_of(record: &UserRecord) -> ProfileExport {
    let pending = record
        .pending_packs
        .iter()
        .map(|pending| PendingPackExport {
            session_id: pending.session_id.clone(),
            pack: pending.pack.as_str().to_owned(),
            credits: pending.credits,
            created_at: rfc3339(pending.created_at),
        });
    ProfileExport {
        created_at: rfc3339(record.created_at),
        plan: record.plan.clone(),
        subscription_status: record.subscription_status.as_str().to_owned(),
        subscription_id: record.subscription_id.clone(),
        price_id: record.price_id.clone(),
        current_period_end: record.current_period_end.map(rfc3339),
        cancel_at_period_end: record.cancel_at_period_end,
        plan_credits: record.credits_remaining,
        purchased_credits: record.purchased_credits,
        free_messages_total: record.free_messages_total,
        free_messages_remaining: record.free_messages_remaining,
        granted_invoices: record.granted_invoices.iter().cloned().collect(),
        paid_period_start: record.granted_period_start.map(rfc3339),
        paid_period_end: record.granted_period_end.map(rfc3339),
        last_synced_at: (record.synced_at_ms > 0).then(|| rfc3339(record.synced_at_ms / 1000)),
        next_check_at: record.next_check.map(rfc3339),
        open_checkout_session: record.open_checkout.as_ref().map(|o| o.id.clone()),
        pending_packs: pending.collect(),
        refundable_until: record.refundable_until.map(rfc3339),
    }
}

/// The erasure under way: begun on the record, perhaps advanced in the tombstone.
fn erasure_of(record: &UserRecord, tombstone: Option<Tombstone>) -> Option<ErasureExport> {
    let began_at = tombstone.map(|t| t.erased_at).or(record.erasing_since)?;
    Some(ErasureExport {
        began_at: rfc3339(began_at),
        stage: tombstone.map_or("started", |t| t.stage.as_str()),
    })
}

/// An entry with its cause (also the operator tool's view of it).
pub fn entry_of(entry: &Entry) -> EntryExport {
    EntryExport {
        entry: EntryView::from(entry),
        cause: entry.cause.clone(),
        plan: entry.plan.clone(),
        period_end: entry.period_end.map(rfc3339),
        reason: entry.reason.clone(),
        pack: entry.pack.clone(),
        payment_intent: entry.payment_intent.clone(),
    }
}

fn debit_of(debit: HeldDebit) -> DebitExport {
    let takes = debit.takes.into_iter().map(|(balance, amount)| TakeExport {
        balance: balance.as_str(),
        amount,
    });
    DebitExport {
        id: debit.id,
        takes: takes.collect(),
        refunded: debit.refunded,
    }
}

fn purchase_of(purchase: Purchase) -> PurchaseExport {
    PurchaseExport {
        payment: purchase.key,
        balance: purchase.balance.as_str(),
        credits: purchase.credits,
        at: rfc3339(purchase.at),
        refunded: purchase.refunded,
        dispute: purchase.dispute.map(|hold| hold.id),
    }
}
