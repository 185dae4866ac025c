//! The credit ledger's items on DynamoDB: one item per entry (`LEDGER#<entry key>`, under the
//! user's partition, kept for the account's life), written in the transaction of its change;
//! the day's usage and refund entries added to with `ADD`; the history read newest first, one
//! `Query` per page.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};

use super::codec::PENDING_PACKS;
use super::keys::{
    Item, PK, SK, balance_attribute, entry_key, n, once_key, profile_key, s, user_pk,
};
use super::{DynamoStore, cancellation_code, store_error};
use crate::domain::{
    Balance, DailyStep, Entry, EntryKey, EntryKind, Period, PostOutcome, Posting,
    SubscriptionStatus, UserId,
};
use crate::store::StoreError;

/// The sort-key prefix of every ledger entry.
pub const LEDGER: &str = "LEDGER#";
/// The condition that the profile still holds the status a change was decided on, and no
/// erasure began; each balance moved and, for the plan's credits, [`SAME_PERIOD`] are added.
const STILL_SEEN: &str =
    "attribute_exists(pk) AND attribute_not_exists(erasing_since) AND #status = :status";
/// The condition that the paid period is still `:period` (a record from before grants has
/// none: period 0).
const SAME_PERIOD: &str = "(attribute_not_exists(#period) OR #period = :period)";
/// The profile attribute naming the paid period.
const PERIOD: &str = "last_grant_created";

/// One balance's change on the profile, from the value read to the new one.
#[derive(Debug, Clone, Copy)]
pub(super) struct Move {
    /// The balance.
    pub balance: Balance,
    /// Its value as read.
    pub before: i64,
    /// Its new value.
    pub after: i64,
}

/// The item of `entry` of `user`.
fn to_item(user: &UserId, entry: &Entry) -> Item {
    let mut item = entry_key(user, &entry.key);
    item.extend([
        ("entity".to_owned(), s("ledger")),
        ("kind".to_owned(), s(entry.kind.as_str())),
        ("balance".to_owned(), s(entry.balance.as_str())),
        ("amount".to_owned(), n(entry.amount)),
        ("balance_after".to_owned(), n(entry.balance_after)),
        ("at".to_owned(), n(entry.at)),
        ("cause".to_owned(), s(&entry.cause)),
    ]);
    let optional = [
        ("messages", entry.messages.map(n)),
        ("granted", entry.granted.map(n)),
        ("expired", entry.expired.map(n)),
        ("plan", entry.plan.as_deref().map(s)),
        ("period_end", entry.period_end.map(n)),
        ("reason", entry.reason.as_deref().map(s)),
        ("operator", entry.operator.as_deref().map(s)),
        ("pack", entry.pack.as_deref().map(s)),
        ("payment_intent", entry.payment_intent.as_deref().map(s)),
        ("spent", entry.spent.map(n)),
    ];
    item.extend(
        optional
            .into_iter()
            .filter_map(|(name, value)| Some((name.to_owned(), value?))),
    );
    item
}

/// The entry in `item`; `Corrupt` if it is not one.
pub(super) fn from_item(item: &Item) -> Result<Entry, StoreError> {
    let corrupt = |name: &str| StoreError::Corrupt(format!("ledger attribute {name}"));
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    let number = |name: &str| {
        let value = item.get(name).and_then(|v| v.as_n().ok());
        value.and_then(|v| v.parse::<i64>().ok())
    };
    let required = |name: &str| number(name).ok_or_else(|| corrupt(name));
    let key = text(SK)
        .and_then(|sk| sk.strip_prefix(LEDGER).and_then(EntryKey::parse))
        .ok_or_else(|| corrupt(SK))?;
    Ok(Entry {
        key,
        kind: text("kind")
            .and_then(|kind| EntryKind::parse(&kind))
            .ok_or_else(|| corrupt("kind"))?,
        balance: text("balance")
            .and_then(|balance| Balance::parse(&balance))
            .ok_or_else(|| corrupt("balance"))?,
        amount: required("amount")?,
        balance_after: required("balance_after")?,
        at: required("at")?,
        cause: text("cause").ok_or_else(|| corrupt("cause"))?,
        messages: number("messages"),
        granted: number("granted"),
        expired: number("expired"),
        plan: text("plan"),
        period_end: number("period_end"),
        reason: text("reason"),
        operator: text("operator"),
        pack: text("pack"),
        payment_intent: text("payment_intent"),
        spent: number("spent"),
    })
}

/// The item `builder` describes.
fn built<T, E>(built: Result<T, E>, what: &str) -> Result<T, StoreError> {
    built.map_err(|_| StoreError::Unavailable(format!("build {what}")))
}

impl DynamoStore {
    /// Puts `entry` of `user`, only if no entry has its key.
    pub(super) fn put_entry(
        &self,
        user: &UserId,
        entry: &Entry,
    ) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(user, entry)))
            .condition_expression("attribute_not_exists(pk)")
            .build();
        Ok(TransactWriteItem::builder().put(built(put, "Put")?).build())
    }

    /// Adds `step` to its day's entry of `user` (made by the first step of the day).
    pub(super) fn add_to_day(
        &self,
        user: &UserId,
        step: &DailyStep,
    ) -> Result<TransactWriteItem, StoreError> {
        // Every name through a placeholder: several (`at`, `day`...) are reserved words.
        let names = [
            "entity",
            "kind",
            "balance",
            "balance_after",
            "at",
            "cause",
            "amount",
            "messages",
        ];
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(entry_key(user, &step.key)))
            .update_expression(
                "SET #entity = :entity, #kind = :kind, #balance = :balance, \
                 #balance_after = :after, #at = :at, #cause = :cause \
                 ADD #amount :amount, #messages :messages",
            )
            .set_expression_attribute_names(Some(
                names
                    .iter()
                    .map(|name| (format!("#{name}"), (*name).to_owned()))
                    .collect(),
            ))
            .set_expression_attribute_values(Some(HashMap::from([
                (":entity".to_owned(), s("ledger")),
                (":kind".to_owned(), s(step.kind.as_str())),
                (":balance".to_owned(), s(step.balance.as_str())),
                (":after".to_owned(), n(step.balance_after)),
                (":at".to_owned(), n(step.at)),
                (":cause".to_owned(), s(&step.day)),
                (":amount".to_owned(), n(step.amount)),
                (":messages".to_owned(), n(step.messages)),
            ])))
            .build();
        Ok(TransactWriteItem::builder()
            .update(built(update, "Update")?)
            .build())
    }

    /// The profile update of the changes `moves`, conditioned on the record still holding what
    /// they were decided on: `status`, each balance as read, the paid `period` when the plan's
    /// credits move (free messages and purchased credits have none), no erasure; then `and`, if
    /// not empty. Returns it with its `SET` of the new balances, for the caller to extend.
    pub(super) fn set_balances(
        &self,
        user: &UserId,
        status: &SubscriptionStatus,
        period: Period,
        moves: &[Move],
        and: &str,
    ) -> (aws_sdk_dynamodb::types::builders::UpdateBuilder, String) {
        let mut condition = STILL_SEEN.to_owned();
        let mut sets = Vec::new();
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(profile_key(user)))
            .expression_attribute_names("#status", "subscription_status")
            .expression_attribute_values(":status", s(status.as_str()));
        for (index, change) in moves.iter().enumerate() {
            let (name, before, after) = (
                format!("#b{index}"),
                format!(":before{index}"),
                format!(":after{index}"),
            );
            // A record from before credit packs has no purchased credits: none.
            condition.push_str(&match change.before {
                0 => format!(" AND (attribute_not_exists({name}) OR {name} = {before})"),
                _ => format!(" AND {name} = {before}"),
            });
            sets.push(format!("{name} = {after}"));
            update = update
                .expression_attribute_names(&name, balance_attribute(change.balance))
                .expression_attribute_values(before, n(change.before))
                .expression_attribute_values(after, n(change.after));
        }
        if moves
            .iter()
            .any(|change| change.balance == Balance::Credits)
        {
            condition.push_str(&format!(" AND {SAME_PERIOD}"));
            update = update
                .expression_attribute_names("#period", PERIOD)
                .expression_attribute_values(":period", n(period));
        }
        if !and.is_empty() {
            condition.push_str(&format!(" AND {and}"));
        }
        let expression = format!("SET {}", sets.join(", "));
        (update.condition_expression(condition), expression)
    }

    /// [`crate::store::Ledger::post`].
    pub(super) async fn post_entry(
        &self,
        user: &UserId,
        posting: &Posting,
    ) -> Result<PostOutcome, StoreError> {
        let entry = &posting.entry;
        let seen = &posting.seen;
        let change = Move {
            balance: entry.balance,
            before: seen.before,
            after: entry.balance_after,
        };
        let mut and: Vec<&str> = match (&posting.grant, &posting.settles) {
            (Some(_), _) => vec!["NOT contains(#granted, :invoice)"],
            (None, Some(_)) => vec!["attribute_exists(#pending.#session)"],
            (None, None) => vec![],
        };
        if posting.refundable_until.is_some() {
            // Never moved back by a change decided on an older read.
            and.push("(attribute_not_exists(#refundable) OR #refundable <= :refundable)");
        }
        let and = and.join(" AND ");
        let (mut profile, mut expression) =
            self.set_balances(user, &seen.status, seen.period, &[change], &and);
        if let Some(until) = posting.refundable_until {
            expression.push_str(", #refundable = :refundable");
            profile = profile
                .expression_attribute_names("#refundable", "refundable_until")
                .expression_attribute_values(":refundable", n(until));
        }
        if let Some(session) = &posting.settles {
            // The pack session this service opened leaves the record as it is granted.
            expression.push_str(" REMOVE #pending.#session");
            profile = profile
                .expression_attribute_names("#pending", PENDING_PACKS)
                .expression_attribute_names("#session", session);
        }
        if let Some(grant) = &posting.grant {
            // An upgrade keeps the period: its debits stay refundable.
            let mut unknown_period = "";
            if grant.starts_period {
                expression.push_str(", #period = :created");
                profile = profile
                    .expression_attribute_values(":created", n(grant.invoice_created))
                    .expression_attribute_names("#start", "granted_period_start")
                    .expression_attribute_names("#end", "granted_period_end");
                match grant.period() {
                    Some((start, end)) => {
                        expression.push_str(", #start = :start, #end = :end");
                        profile = profile
                            .expression_attribute_values(":start", n(start))
                            .expression_attribute_values(":end", n(end));
                    }
                    None => unknown_period = " REMOVE #start, #end",
                }
            }
            expression.push_str(", #most = :most ADD #granted :invoices");
            expression.push_str(unknown_period);
            profile = profile
                .expression_attribute_names("#granted", "granted_invoices")
                .expression_attribute_names("#most", "period_credits")
                .expression_attribute_values(":most", n(grant.credits))
                .expression_attribute_values(":invoice", s(&grant.invoice_id))
                .expression_attribute_values(
                    ":invoices",
                    AttributeValue::Ss(vec![grant.invoice_id.clone()]),
                );
        }
        let profile = built(profile.update_expression(expression).build(), "Update")?;
        let mut items = vec![
            self.put_entry(user, entry)?,
            TransactWriteItem::builder().update(profile).build(),
        ];
        if let Some(once) = &posting.once {
            let mut marker = once_key(user, once);
            marker.extend([
                ("entity".to_owned(), s("once")),
                ("entry".to_owned(), s(entry.key.as_str())),
            ]);
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(marker))
                .condition_expression("attribute_not_exists(pk)")
                .build();
            items.push(TransactWriteItem::builder().put(built(put, "Put")?).build());
        }
        let purchase_at = items.len();
        if let Some(purchase) = &posting.purchase {
            items.push(self.put_purchase(user, purchase)?);
        }
        let err = match self.transact(items).await {
            Ok(()) => return Ok(PostOutcome::Posted),
            Err(err) => err,
        };
        let failed = |index| cancellation_code(&err, index) == Some("ConditionalCheckFailed");
        let once_failed = posting.once.is_some() && failed(2);
        if failed(0) || once_failed {
            return Ok(PostOutcome::AlreadyPosted);
        }
        if failed(1) || (posting.purchase.is_some() && failed(purchase_at)) {
            // Erasing, or no record; else the record moved.
            self.refused_unless_erasing(user).await?;
            return Ok(PostOutcome::Moved);
        }
        if super::is_transaction_conflict(&err) {
            return Ok(PostOutcome::Moved); // nothing was written: decide again
        }
        Err(store_error("TransactWriteItems", err))
    }

    /// [`crate::store::Ledger::entries`].
    pub(super) async fn entry_page(
        &self,
        user: &UserId,
        after: Option<&EntryKey>,
        limit: usize,
    ) -> Result<(Vec<Entry>, bool), StoreError> {
        let page_size = i32::try_from(limit + 1).unwrap_or(i32::MAX);
        let start = after.map(|after| entry_key(user, after));
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :ledger)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", s(&user_pk(user)))
            .expression_attribute_values(":ledger", s(LEDGER))
            .scan_index_forward(false)
            .consistent_read(true)
            .limit(page_size)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|err| store_error("Query", err))?;
        let more = output.items().len() > limit;
        // An entry this version cannot read (a kind a newer one wrote, before a rollback) is
        // left out of the page and logged, rather than failing the user's whole history.
        let entries = output
            .items()
            .iter()
            .take(limit)
            .filter_map(|item| {
                from_item(item)
                    .inspect_err(|err| tracing::error!(user = %user.hash(), %err, "unreadable ledger entry left out"))
                    .ok()
            })
            .collect();
        Ok((entries, more))
    }
}
