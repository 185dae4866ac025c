//! The profile record as a DynamoDB item, and back. Optional attributes are absent when unset
//! (a `NULL` reads as unset too); invoices are a string set, absent when empty.

use aws_sdk_dynamodb::types::AttributeValue;

use super::keys::{DUE, DUE_AT, DUE_SHARD, Item, n, profile_key, s};
use crate::domain::{OpenCheckout, PackId, PendingPack, SubscriptionStatus, UserId, UserRecord};
use crate::store::StoreError;

/// The item of `record`, keys included.
pub fn to_item(record: &UserRecord) -> Item {
    let mut item = profile_key(&record.user_id);
    item.extend([
        ("entity".to_owned(), s("user")),
        ("plan".to_owned(), s(&record.plan)),
        (
            "subscription_status".to_owned(),
            s(record.subscription_status.as_str()),
        ),
        ("credits_remaining".to_owned(), n(record.credits_remaining)),
        ("purchased_credits".to_owned(), n(record.purchased_credits)),
        (
            "free_messages_total".to_owned(),
            n(record.free_messages_total),
        ),
        (
            "free_messages_remaining".to_owned(),
            n(record.free_messages_remaining),
        ),
        ("created_at".to_owned(), n(record.created_at)),
        (
            "cancel_at_period_end".to_owned(),
            AttributeValue::Bool(record.cancel_at_period_end),
        ),
        ("synced_at_ms".to_owned(), n(record.synced_at_ms)),
        (
            "last_grant_created".to_owned(),
            n(record.last_grant_created),
        ),
        (
            "stripe_customer_possible".to_owned(),
            AttributeValue::Bool(record.stripe_customer_possible),
        ),
    ]);
    if !record.pending_packs.is_empty() {
        let pending = record.pending_packs.iter().map(|pending| {
            (
                pending.session_id.clone(),
                AttributeValue::M(pending_pack_item(pending)),
            )
        });
        item.insert(
            PENDING_PACKS.to_owned(),
            AttributeValue::M(pending.collect()),
        );
    }
    if !record.granted_invoices.is_empty() {
        let invoices = record.granted_invoices.iter().cloned().collect();
        item.insert("granted_invoices".to_owned(), AttributeValue::Ss(invoices));
    }
    let optional = [
        (
            "stripe_customer_id",
            record.stripe_customer_id.as_deref().map(s),
        ),
        ("customer_linked_at", record.customer_linked_at.map(n)),
        ("subscription_id", record.subscription_id.as_deref().map(s)),
        ("price_id", record.price_id.as_deref().map(s)),
        ("current_period_end", record.current_period_end.map(n)),
        ("period_credits", record.period_credits.map(n)),
        ("granted_period_start", record.granted_period_start.map(n)),
        ("granted_period_end", record.granted_period_end.map(n)),
        (DUE_SHARD, record.next_check.map(|_| s(DUE))),
        (DUE_AT, record.next_check.map(n)),
        (
            "open_checkout_session",
            record.open_checkout.as_ref().map(|o| s(&o.id)),
        ),
        (
            "open_checkout_url",
            record.open_checkout.as_ref().map(|o| s(&o.url)),
        ),
        (
            "open_checkout_expires",
            record.open_checkout.as_ref().map(|o| n(o.expires_at)),
        ),
        (
            "open_checkout_price",
            record.open_checkout.as_ref().map(|o| s(&o.price_id)),
        ),
        ("refundable_until", record.refundable_until.map(n)),
        ("status_since", record.status_since.map(n)),
        ("charges_listed_at", record.charges_listed_at.map(n)),
        ("erasing_since", record.erasing_since.map(n)),
    ];
    item.extend(
        optional
            .into_iter()
            .filter_map(|(k, v)| Some((k.to_owned(), v?))),
    );
    item
}

/// The attribute of the pack sessions opened and not granted yet: a map by session id.
pub const PENDING_PACKS: &str = "pending_packs";

/// One pending pack session as the value of its entry in [`PENDING_PACKS`].
pub fn pending_pack_item(pending: &PendingPack) -> Item {
    Item::from([
        ("pack".to_owned(), s(pending.pack.as_str())),
        ("credits".to_owned(), n(pending.credits)),
        ("created_at".to_owned(), n(pending.created_at)),
    ])
}

/// The pending pack sessions of `item`, oldest first; `Corrupt` if one is malformed.
fn pending_packs(item: &Item) -> Result<Vec<PendingPack>, StoreError> {
    let Some(AttributeValue::M(sessions)) = item.get(PENDING_PACKS) else {
        return Ok(Vec::new());
    };
    let corrupt = || StoreError::Corrupt(format!("attribute {PENDING_PACKS}"));
    let mut pending = sessions
        .iter()
        .map(|(session, value)| {
            let fields = value.as_m().map_err(|_| corrupt())?;
            let text = |name: &str| fields.get(name).and_then(|v| v.as_s().ok());
            let number = |name: &str| {
                let value = fields.get(name).and_then(|v| v.as_n().ok());
                value
                    .and_then(|v| v.parse::<i64>().ok())
                    .ok_or_else(corrupt)
            };
            Ok(PendingPack {
                session_id: session.clone(),
                pack: text("pack")
                    .and_then(|pack| PackId::parse(pack).ok())
                    .ok_or_else(corrupt)?,
                credits: number("credits")?,
                created_at: number("created_at")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    pending.sort_by(|a, b| a.order().cmp(&b.order()));
    Ok(pending)
}

/// The record of `user` in `item`; `Corrupt` names the first attribute that is missing or of
/// the wrong type.
pub fn from_item(user: &UserId, item: &Item) -> Result<UserRecord, StoreError> {
    let s = |name: &str| match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v.clone()),
        _ => Err(StoreError::Corrupt(format!(
            "attribute {name} is not a string"
        ))),
    };
    let n = |name: &str| match item.get(name) {
        Some(AttributeValue::N(v)) => v
            .parse::<i64>()
            .map_err(|_| StoreError::Corrupt(format!("attribute {name} is not an integer"))),
        _ => Err(StoreError::Corrupt(format!(
            "attribute {name} is not a number"
        ))),
    };
    let optional_s = |name: &str| match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(_) => s(name).map(Some),
    };
    let optional_n = |name: &str| match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(_) => n(name).map(Some),
    };
    Ok(UserRecord {
        user_id: user.clone(),
        plan: s("plan")?,
        subscription_status: SubscriptionStatus::parse(&s("subscription_status")?),
        credits_remaining: n("credits_remaining")?,
        // Absent on records from before credit packs: none bought.
        purchased_credits: optional_n("purchased_credits")?.unwrap_or(0),
        free_messages_total: n("free_messages_total")?,
        free_messages_remaining: n("free_messages_remaining")?,
        created_at: n("created_at")?,
        stripe_customer_id: optional_s("stripe_customer_id")?,
        customer_linked_at: optional_n("customer_linked_at")?,
        subscription_id: optional_s("subscription_id")?,
        price_id: optional_s("price_id")?,
        current_period_end: optional_n("current_period_end")?,
        cancel_at_period_end: matches!(
            item.get("cancel_at_period_end"),
            Some(AttributeValue::Bool(true))
        ),
        synced_at_ms: optional_n("synced_at_ms")?.unwrap_or(0),
        granted_invoices: match item.get("granted_invoices") {
            Some(AttributeValue::Ss(invoices)) => invoices.iter().cloned().collect(),
            _ => Default::default(),
        },
        last_grant_created: optional_n("last_grant_created")?.unwrap_or(0),
        // Absent on records granted before periods were told apart by their invoices' lines.
        granted_period_start: optional_n("granted_period_start")?,
        granted_period_end: optional_n("granted_period_end")?,
        period_credits: optional_n("period_credits")?,
        next_check: optional_n(DUE_AT)?,
        status_since: optional_n("status_since")?,
        // Absent on records from before the flag: a customer may exist.
        stripe_customer_possible: !matches!(
            item.get("stripe_customer_possible"),
            Some(AttributeValue::Bool(false))
        ),
        open_checkout: match (
            optional_s("open_checkout_session")?,
            optional_s("open_checkout_url")?,
            optional_n("open_checkout_expires")?,
            optional_s("open_checkout_price")?,
        ) {
            (Some(id), url, expires_at, price_id) => Some(OpenCheckout {
                id,
                // A session recorded by its id alone (an older record) is expired, and one
                // recorded without its price sells none: neither is reused.
                url: url.unwrap_or_default(),
                expires_at: expires_at.unwrap_or(0),
                price_id: price_id.unwrap_or_default(),
            }),
            (None, ..) => None,
        },
        pending_packs: pending_packs(item)?,
        refundable_until: optional_n("refundable_until")?,
        charges_listed_at: optional_n("charges_listed_at")?,
        erasing_since: optional_n("erasing_since")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::dynamo::keys::{PK, SK};

    fn user() -> UserId {
        UserId::parse("4b3c1d7e-8f1a-4c1e-9a55-2f0e2d9c1a10").unwrap()
    }

    fn subscriber() -> UserRecord {
        let mut record = UserRecord::new_free(user(), 10, 1_700_000_000);
        record.plan = "pro".into();
        record.subscription_status = SubscriptionStatus::Active;
        record.credits_remaining = 850;
        record.free_messages_remaining = 3;
        record.purchased_credits = 120;
        record.stripe_customer_id = Some("cus_1".into());
        record.customer_linked_at = Some(1_700_000_050);
        record.subscription_id = Some("sub_1".into());
        record.price_id = Some("price_1".into());
        record.current_period_end = Some(1_702_592_000);
        record.cancel_at_period_end = true;
        record.synced_at_ms = 1_700_000_000_123;
        record.granted_invoices = ["in_1".to_owned(), "in_2".to_owned()].into();
        record.last_grant_created = 1_700_000_100;
        record.period_credits = Some(5000);
        record.granted_period_start = Some(1_700_000_100);
        record.granted_period_end = Some(1_702_592_100);
        record.next_check = Some(1_702_595_600);
        record.status_since = Some(1_700_000_000);
        record.stripe_customer_possible = true;
        record.open_checkout = Some(OpenCheckout {
            id: "cs_test_1".into(),
            url: "https://checkout.stripe.com/c/pay/cs_test_1".into(),
            expires_at: 1_700_003_600,
            price_id: "price_1".into(),
        });
        record.erasing_since = Some(1_700_000_200);
        record.pending_packs = vec![PendingPack {
            session_id: "cs_test_pack".into(),
            pack: PackId::parse("small").unwrap(),
            credits: 500,
            created_at: 1_700_000_300,
        }];
        record
    }

    #[test]
    fn every_field_round_trips() {
        for record in [
            UserRecord::new_free(user(), 10, 1_700_000_000),
            subscriber(),
        ] {
            assert_eq!(from_item(&user(), &to_item(&record)).unwrap(), record);
        }
    }

    #[test]
    fn an_item_carries_its_keys_and_no_empty_optional_attributes() {
        let item = to_item(&UserRecord::new_free(user(), 10, 0));
        assert_eq!(item[PK], s(&format!("USER#{}", user().as_str())));
        assert_eq!(item[SK], s("PROFILE"));
        for absent in [
            "stripe_customer_id",
            "price_id",
            "granted_invoices",
            "due_at",
        ] {
            assert!(!item.contains_key(absent), "{absent}");
        }
        let item = to_item(&subscriber());
        assert_eq!(item["subscription_status"], s("active"));
        assert_eq!(
            (&item["due_shard"], &item["due_at"]),
            (&s("DUE"), &n(1_702_595_600))
        );
        assert_eq!(
            item["granted_invoices"],
            AttributeValue::Ss(vec!["in_1".into(), "in_2".into()])
        );
    }

    #[test]
    fn nulls_and_older_items_without_sync_attributes_read_as_unset() {
        let mut item = to_item(&subscriber());
        item.insert("price_id".into(), AttributeValue::Null(true));
        let mut free = to_item(&UserRecord::new_free(user(), 10, 0));
        for older in [
            "synced_at_ms",
            "last_grant_created",
            "granted_invoices",
            "purchased_credits",
            "granted_period_start",
            "granted_period_end",
        ] {
            item.remove(older);
        }
        free.remove("stripe_customer_possible");
        assert!(
            from_item(&user(), &free).unwrap().stripe_customer_possible,
            "a record from before the flag may have a customer"
        );
        let record = from_item(&user(), &item).unwrap();
        assert_eq!(record.price_id, None);
        assert_eq!((record.synced_at_ms, record.last_grant_created), (0, 0));
        assert_eq!(record.purchased_credits, 0, "none bought before packs");
        assert_eq!(
            record.granted_period_end, None,
            "periods then told apart by creation"
        );
        assert!(record.granted_invoices.is_empty());
    }

    #[test]
    fn a_missing_or_mistyped_attribute_is_corrupt_and_named() {
        let mut missing = to_item(&subscriber());
        missing.remove("credits_remaining");
        let mut mistyped = to_item(&subscriber());
        mistyped.insert("plan".into(), n(3));
        let mut fractional = to_item(&subscriber());
        fractional.insert("created_at".into(), AttributeValue::N("1.5".into()));
        for (item, attribute) in [
            (missing, "credits_remaining"),
            (mistyped, "plan"),
            (fractional, "created_at"),
        ] {
            match from_item(&user(), &item) {
                Err(StoreError::Corrupt(message)) => assert!(message.contains(attribute)),
                other => panic!("{attribute}: {other:?}"),
            }
        }
    }
}
