//! The credit history a user sees (`GET /v1/user/credits`): the balances, then the ledger's
//! entries newest first, a page at a time, continued by an opaque cursor bound to the caller.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::Rules;
use crate::domain::entries::rfc3339;
use crate::domain::{Caller, Entry, EntryKey, UserId};
use crate::error::ApiError;
use crate::store::{Erasures, Ledger, Profiles};
use crate::users;

/// Entries per page when the caller names no `limit`.
pub const DEFAULT_LIMIT: usize = 50;
/// The most entries a page holds.
pub const MAX_LIMIT: usize = 100;

/// The body of `GET /v1/user/credits`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreditHistory {
    /// The credits left, as the status shows them: `plan_credits` plus `purchased_credits`.
    pub credits_remaining: i64,
    /// The plan's credits left in this period (entries on balance `credits`).
    pub plan_credits: i64,
    /// The purchased credits left (entries on balance `purchased`).
    pub purchased_credits: i64,
    /// The free messages left.
    pub free_messages_remaining: i64,
    /// This page's entries, newest first.
    pub entries: Vec<EntryView>,
    /// Where the next page starts, or `None` on the last.
    pub next_cursor: Option<String>,
}

/// One entry as the user sees it: no cause ids beyond the entry's own id, no operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntryView {
    /// Stable and unique within the user's history.
    pub id: String,
    /// `period_grant`, `plan_upgrade`, `usage`, `message_refund`, `subscription_ended`,
    /// `customer_deleted`, `adjustment`, `pack_purchase`, `payment_refunded`, `dispute_hold`,
    /// `dispute_released` (more may come: clients show unknown kinds by their amount).
    pub kind: &'static str,
    /// `credits`, `purchased` or `free_messages`.
    pub balance: &'static str,
    /// The signed change.
    pub amount: i64,
    /// The balance after it.
    pub balance_after: i64,
    /// When, RFC 3339 UTC.
    pub at: String,
    /// The UTC day of a day's entry (`usage`, `message_refund`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub day: Option<String>,
    /// How many messages (day entries).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages: Option<i64>,
    /// The credits a period grant gave.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub granted: Option<i64>,
    /// What was left and expired with the change (period grants, endings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expired: Option<i64>,
    /// Of a refund or a dispute hold: what it owed that was spent before, so not taken back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spent: Option<i64>,
    /// A line to show: the plan and period of a grant, an adjustment's reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl From<&Entry> for EntryView {
    fn from(entry: &Entry) -> Self {
        EntryView {
            id: entry.key.as_str().to_owned(),
            kind: entry.kind.as_str(),
            balance: entry.balance.as_str(),
            amount: entry.amount,
            balance_after: entry.balance_after,
            at: rfc3339(entry.at),
            day: entry.day().map(str::to_owned),
            messages: entry.messages,
            granted: entry.granted,
            expired: entry.expired,
            spent: entry.spent,
            description: entry.description(),
        }
    }
}

/// Which page a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// Entries per page, 1 to [`MAX_LIMIT`].
    pub limit: usize,
    /// The last entry of the previous page.
    pub after: Option<EntryKey>,
}

impl PageRequest {
    /// The page `query` (the raw query string) asks `user` for: `limit` (1 to [`MAX_LIMIT`],
    /// default [`DEFAULT_LIMIT`]) and `cursor` (a `next_cursor` given to this user). Other
    /// parameters are ignored; a repeated one is refused.
    pub fn parse(query: Option<&str>, user: &UserId) -> Result<PageRequest, ApiError> {
        let (mut limit, mut cursor) = (None, None);
        for (name, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match name.as_ref() {
                "limit" if limit.is_none() => limit = Some(value.into_owned()),
                "limit" => return Err(ApiError::InvalidLimit),
                "cursor" if cursor.is_none() => cursor = Some(value.into_owned()),
                "cursor" => return Err(ApiError::InvalidCursor),
                _ => {}
            }
        }
        let limit = match limit {
            None => DEFAULT_LIMIT,
            Some(raw) => raw
                .parse::<usize>()
                .ok()
                .filter(|limit| (1..=MAX_LIMIT).contains(limit))
                .ok_or(ApiError::InvalidLimit)?,
        };
        let after = cursor
            .map(|raw| open_cursor(user, &raw).ok_or(ApiError::InvalidCursor))
            .transpose()?;
        Ok(PageRequest { limit, after })
    }
}

/// The tag binding a cursor for `key` to `user`. Not a secret: a cursor can only point into the
/// caller's own history (the query is on their partition, the key is checked), the tag makes an
/// altered or another account's cursor a clear 400 rather than a page from elsewhere.
fn tag(user: &UserId, key: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"credit-history-cursor\n")
        .chain_update(user.full_hash())
        .chain_update(b"\n")
        .chain_update(key)
        .finalize();
    hex::encode(&digest[..12])
}

/// The cursor continuing after `key` for `user`.
pub fn cursor(user: &UserId, key: &EntryKey) -> String {
    let sealed = format!("{}.{}", key.as_str(), tag(user, key.as_str()));
    URL_SAFE_NO_PAD.encode(sealed)
}

/// The key a cursor of `user` continues after, if it is one this endpoint gave `user`.
fn open_cursor(user: &UserId, raw: &str) -> Option<EntryKey> {
    let sealed = String::from_utf8(URL_SAFE_NO_PAD.decode(raw).ok()?).ok()?;
    let (key, given) = sealed.rsplit_once('.')?;
    (tag(user, key) == given).then_some(())?;
    EntryKey::parse(key)
}

/// The history page `page` of `caller`: the balances from the one record read (made on first
/// sight, like the status), and one query of the ledger. 410 once the account's erasure began.
pub async fn credit_history<S>(
    store: &S,
    caller: &Caller,
    rules: &Rules,
    page: &PageRequest,
) -> Result<CreditHistory, ApiError>
where
    S: Profiles + Erasures + Ledger + ?Sized,
{
    let record = users::load_or_create(store, caller, rules).await?;
    let user = &caller.user;
    let (entries, more) = store.entries(user, page.after.as_ref(), page.limit).await?;
    let next_cursor = entries
        .last()
        .filter(|_| more)
        .map(|last| cursor(user, &last.key));
    Ok(CreditHistory {
        credits_remaining: record.credits_shown(),
        plan_credits: record.credits_remaining,
        purchased_credits: record.purchased_credits,
        free_messages_remaining: record.free_messages_remaining,
        entries: entries.iter().map(EntryView::from).collect(),
        next_cursor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(n: u8) -> UserId {
        UserId::parse(&format!("4b3c1d7e-8f1a-4c1e-9a55-2f0e2d9c1a1{n}")).unwrap()
    }

    #[test]
    fn limits_are_one_to_a_hundred_and_default_to_fifty() {
        let page = |query| PageRequest::parse(Some(query), &user(0));
        assert_eq!(page("").unwrap().limit, DEFAULT_LIMIT);
        assert_eq!(page("limit=1").unwrap().limit, 1);
        assert_eq!(page("limit=100&other=x").unwrap().limit, 100);
        for bad in [
            "limit=0",
            "limit=101",
            "limit=-1",
            "limit=ten",
            "limit=",
            "limit=1&limit=2",
        ] {
            assert_eq!(page(bad), Err(ApiError::InvalidLimit), "{bad}");
        }
    }

    #[test]
    fn a_cursor_opens_only_for_its_user_and_unaltered() {
        let key = EntryKey::parse("2026-12-01T23:59:59Z#usage#2026-12-01#credits").unwrap();
        let given = cursor(&user(0), &key);
        let query = format!("cursor={given}");
        let page = PageRequest::parse(Some(&query), &user(0)).unwrap();
        assert_eq!(page.after, Some(key));
        assert_eq!(
            PageRequest::parse(Some(&query), &user(1)),
            Err(ApiError::InvalidCursor),
            "another account's cursor"
        );
        let mut altered = given.into_bytes();
        altered[3] = if altered[3] == b'A' { b'B' } else { b'A' };
        let altered = format!("cursor={}", String::from_utf8(altered).unwrap());
        for bad in [
            altered.as_str(),
            "cursor=",
            "cursor=%%%",
            "cursor=bm90LWEtY3Vyc29y",
        ] {
            assert_eq!(
                PageRequest::parse(Some(bad), &user(0)),
                Err(ApiError::InvalidCursor),
                "{bad}"
            );
        }
    }
}
