//! Load with invariants: 20 concurrent users, 2,000 mixed requests against the local API on
//! the DynamoDB emulator (with the Stripe stub): status reads, syncs, duplicate webhooks, a
//! credit pack bought (and its event delivered twice) and half refunded (that event twice too)
//! by each user, and message debits through the library on the same table. Zero unexpected
//! answers, and every user ends with exactly the credits granted and bought minus the refund's
//! clawback and the debits that succeeded, each balance the sum of its ledger entries. Throughput and
//! latency percentiles go to `target/reports/load.md`.
//!
//! `LOAD_USERS` and `LOAD_REQUESTS` scale it (e.g. `LOAD_USERS=50 LOAD_REQUESTS=50000 ./scripts/test
//! load::`); the defaults keep the suite within its time budget.

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::config::Rules;
use common::credits::debit_message;
use common::domain::{EntryKind, UserId, UserRecord};
use common::store::Store;
use integration_tests::apps::event;
use integration_tests::apps::{customer_of_new_user, invoice_paid};
use integration_tests::binaries::{local_api_env, start_local_api};
use integration_tests::stripe_stub::{PACK_PRICE, StripeStub, WEBHOOK_SECRET};
use integration_tests::{emulator, ledger_conformance, tokens};
use serde_json::{Value, json};

/// Credits each paid invoice grants in this test, for `per_user` requests each: 30% of them, so
/// that the heaviest third of the users (who debit 40%) runs out and refusals (402) are part of
/// the load.
fn plan_credits(per_user: usize) -> i64 {
    (per_user * 3 / 10) as i64
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Status,
    Sync,
    Debit,
    DuplicateWebhook,
    BuyPack,
}

/// One user's share of the traffic, deterministic per user: a third debit on 20% of their
/// requests, a third on 30%, a third on 40% (more than the 30% they have credits for); a tenth
/// each of syncs and duplicate webhooks; one credit pack bought; the rest status reads;
/// interleaved.
fn schedule(user_index: usize, requests: usize) -> Vec<Op> {
    let debits = requests * (2 + user_index % 3) / 10;
    let (syncs, webhooks) = (requests / 10, requests / 10);
    let mut ops: Vec<Op> = std::iter::once(Op::BuyPack)
        .chain(std::iter::repeat_n(Op::Debit, debits))
        .chain(std::iter::repeat_n(Op::Sync, syncs))
        .chain(std::iter::repeat_n(Op::DuplicateWebhook, webhooks))
        .chain(std::iter::repeat(Op::Status))
        .take(requests)
        .collect();
    let stride = 7919 + user_index;
    let mut order: Vec<usize> = (0..ops.len()).collect();
    order.sort_by_key(|i| (i * stride) % ops.len());
    ops = order.into_iter().map(|i| ops[i]).collect();
    ops
}

struct User {
    id: UserId,
    token: String,
    /// The `invoice.paid` event that granted the credits, redelivered as duplicates.
    paid_event: Value,
}

/// What one user's run produced.
#[derive(Default)]
struct Tally {
    debits_paid: i64,
    debits_refused: i64,
    latencies: Vec<(Op, Duration)>,
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn run_user(
    client: reqwest::Client,
    base: String,
    (store, stub): (Arc<dyn Store>, Arc<StripeStub>),
    user: Arc<User>,
    ops: Vec<Op>,
) -> Tally {
    let mut tally = Tally::default();
    let rules = Rules::default();
    for (n, op) in ops.into_iter().enumerate() {
        let started = Instant::now();
        match op {
            Op::Status | Op::Sync => {
                let request = if op == Op::Status {
                    client.get(format!("{base}/v1/user/status"))
                } else {
                    client.post(format!("{base}/v1/stripe/sync-subscription"))
                };
                let response = request.bearer_auth(&user.token).send().await.unwrap();
                let status = response.status().as_u16();
                let body: Value = response.json().await.unwrap();
                assert_eq!(status, 200, "{op:?}: {body}");
                assert_eq!(body["subscription_status"], "active", "{op:?}: {body}");
            }
            Op::DuplicateWebhook => {
                let status = deliver(&client, &base, &user.paid_event).await;
                assert_eq!(status, 200, "duplicate webhook");
            }
            Op::BuyPack => {
                let response = client
                    .post(format!("{base}/v1/stripe/create-credit-pack-session"))
                    .bearer_auth(&user.token)
                    .json(&json!({"pack": "small"}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status().as_u16(), 200, "pack checkout");
                let body: Value = response.json().await.unwrap();
                let url = body["checkout_url"].as_str().unwrap();
                let session = url.rsplit('/').next().unwrap();
                stub.pay(session).unwrap();
                let id = format!("evt_{}", uuid::Uuid::new_v4().simple());
                let paid = event(
                    &id,
                    "checkout.session.completed",
                    stub.checkout_session(session),
                );
                for _ in 0..2 {
                    assert_eq!(deliver(&client, &base, &paid).await, 200, "pack event");
                }
                // Half its payment refunded at once: half its credits taken back, once.
                let intent = stub.checkout_session(session)["payment_intent"].clone();
                let charge = stub.charge_of(intent.as_str().unwrap()).unwrap();
                let half = charge["amount"].as_i64().unwrap() / 2;
                let refunded = stub.refund(charge["id"].as_str().unwrap(), Some(half));
                let id = format!("evt_{}", uuid::Uuid::new_v4().simple());
                let refund = event(&id, "charge.refunded", refunded);
                for _ in 0..2 {
                    assert_eq!(deliver(&client, &base, &refund).await, 200, "refund event");
                }
            }
            Op::Debit => {
                let message = format!("msg_{}_{n}", user.id.as_str());
                match debit_message(
                    store.as_ref(),
                    &common::domain::Caller::signed_in(&user.id),
                    &rules,
                    &message,
                    "default",
                )
                .await
                {
                    Ok(_) => tally.debits_paid += 1,
                    Err(common::credits::DebitError::Insufficient) => tally.debits_refused += 1,
                    Err(other) => panic!("unexpected debit failure: {other:?}"),
                }
            }
        }
        tally.latencies.push((op, started.elapsed()));
    }
    tally
}

/// Delivers `event` to the local API's webhook, signed now; returns the status.
async fn deliver(client: &reqwest::Client, base: &str, event: &Value) -> u16 {
    let body = event.to_string();
    let signature =
        common::webhook::signature::sign(body.as_bytes(), WEBHOOK_SECRET, common::unix_now());
    let response = client
        .post(format!("{base}/webhooks/stripe"))
        .header("stripe-signature", signature)
        .body(body)
        .send()
        .await
        .unwrap();
    response.status().as_u16()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_users_mixed_requests_and_every_credit_accounted_for() {
    let users_count = env_number("LOAD_USERS", 20);
    let total_requests = env_number("LOAD_REQUESTS", 2_000);
    let per_user = total_requests / users_count;
    let plan_credits = plan_credits(per_user);

    // A pack of a twentieth of the requests: the heaviest users (40% debits against 30% + 5%)
    // still run out.
    let pack_credits = (per_user / 20).max(1) as i64;
    let stub = Arc::new(StripeStub::start().await);
    stub.active_for_every_customer().await;
    let credits = plan_credits.to_string();
    let mut env: Vec<(&str, String)> = local_api_env(&stub.uri())
        .into_iter()
        .filter(|(k, _)| !["PLAN_CREDITS", "CREDIT_PACKS"].contains(k))
        .collect();
    env.push(("PLAN_CREDITS", credits));
    env.push(("CREDIT_PACKS", format!("small:{PACK_PRICE}:{pack_credits}")));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let api = start_local_api(&env).await;
    let base = api.base.clone();
    let client = reqwest::Client::new();
    let store: Arc<dyn Store> = Arc::new(emulator::store().await);

    // Each user: a record linked to a customer, then the paid invoice through the webhook.
    let mut users = Vec::new();
    for _ in 0..users_count {
        let (id, customer) = customer_of_new_user(&store).await;
        stub.add_customer(&customer, id.as_str());
        let event_id = format!("evt_{}", uuid::Uuid::new_v4().simple());
        let invoice = format!("in_{}", uuid::Uuid::new_v4().simple());
        let paid_event = invoice_paid(&event_id, &invoice, &customer, common::unix_now());
        assert_eq!(deliver(&client, &base, &paid_event).await, 200);
        let record = store.get_user(&id).await.unwrap().unwrap();
        assert_eq!(record.credits_remaining, plan_credits);
        let token = tokens::hs256(
            &tokens::claims(id.as_str(), tokens::EVENTS_ISSUER),
            tokens::EVENTS_SECRET,
        );
        users.push(Arc::new(User {
            id,
            token,
            paid_event,
        }));
    }

    let started = Instant::now();
    let runs: Vec<_> = users
        .iter()
        .enumerate()
        .map(|(index, user)| {
            let ops = schedule(index, per_user);
            tokio::spawn(run_user(
                client.clone(),
                base.clone(),
                (store.clone(), stub.clone()),
                user.clone(),
                ops,
            ))
        })
        .collect();
    let mut tallies = Vec::new();
    for run in runs {
        tallies.push(run.await.expect("no unexpected answer"));
    }
    let elapsed = started.elapsed();

    for ((index, user), tally) in users.iter().enumerate().zip(&tallies) {
        let attempted = schedule(index, per_user)
            .iter()
            .filter(|op| **op == Op::Debit)
            .count() as i64;
        let record = store.get_user(&user.id).await.unwrap().unwrap();
        // The refund of half the pack took half its credits, or what was left of them then.
        let (entries, _) = store.entries(&user.id, None, 1000).await.unwrap();
        let refunds: Vec<i64> = entries
            .iter()
            .filter(|e| e.kind == EntryKind::PaymentRefunded)
            .map(|e| -e.amount)
            .collect();
        assert_eq!(refunds.len(), 1, "one refund entry: {refunds:?}");
        let taken = refunds[0];
        assert!((0..=pack_credits / 2).contains(&taken), "{taken}");
        assert_eq!(
            record.credits_remaining + record.purchased_credits,
            plan_credits + pack_credits - taken - tally.debits_paid,
            "granted and bought minus the refund's clawback and successful debits"
        );
        // Refusals may come before the pack does, never while plan credits are left.
        let paid = tally.debits_paid;
        assert!(
            paid >= attempted.min(plan_credits)
                && paid <= attempted.min(plan_credits + pack_credits),
            "{paid} of {attempted}"
        );
        assert_eq!(tally.debits_refused, attempted - tally.debits_paid);
        assert_eq!(record.granted_invoices.len(), 1, "granted once");
        assert!(record.pending_packs.is_empty(), "the pack granted once");
        assert_eq!(
            record.free_messages_remaining, 10,
            "subscribers pay credits"
        );
        // The ledger's invariant: each balance is its value at creation (0 credits, 10 free
        // messages) plus its entries.
        let created = UserRecord::new_free(user.id.clone(), 10, 0);
        let sums = ledger_conformance::ledger_sums(store.as_ref(), &user.id, &created).await;
        sums.unwrap_or_else(|broken| panic!("the ledger does not add up: {broken}"));
    }

    write_report(&tallies, elapsed, users_count);
}

fn write_report(tallies: &[Tally], elapsed: Duration, users: usize) {
    let mut all: Vec<(Op, Duration)> = tallies
        .iter()
        .flat_map(|t| t.latencies.iter().copied())
        .collect();
    let total = all.len();
    let paid: i64 = tallies.iter().map(|t| t.debits_paid).sum();
    let refused: i64 = tallies.iter().map(|t| t.debits_refused).sum();
    let mut report = format!(
        "# Load: {total} requests, {users} concurrent users, local API on the DynamoDB emulator\n\n\
         {:.0} requests/s over {:.1} s; debits: {paid} paid, {refused} refused (402); 0 unexpected answers.\n\n\
         | kind | count | p50 | p99 | max |\n|---|---|---|---|---|\n",
        total as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64(),
    );
    all.sort_by_key(|(_, d)| *d);
    let kinds = [
        ("all", None),
        ("GET /v1/user/status", Some(Op::Status)),
        ("POST /v1/stripe/sync-subscription", Some(Op::Sync)),
        (
            "POST /webhooks/stripe (duplicate)",
            Some(Op::DuplicateWebhook),
        ),
        ("debit_message (library)", Some(Op::Debit)),
        (
            "pack bought (checkout, paid, event twice), half refunded (event twice)",
            Some(Op::BuyPack),
        ),
    ];
    for (name, kind) in kinds {
        let sorted: Vec<Duration> = all
            .iter()
            .filter(|(op, _)| kind.is_none_or(|k| k == *op))
            .map(|(_, d)| *d)
            .collect();
        report.push_str(&format!(
            "| {name} | {} | {:.1} ms | {:.1} ms | {:.1} ms |\n",
            sorted.len(),
            percentile(&sorted, 0.50).as_secs_f64() * 1e3,
            percentile(&sorted, 0.99).as_secs_f64() * 1e3,
            sorted.last().unwrap().as_secs_f64() * 1e3,
        ));
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/reports");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("load.md"), &report).unwrap();
    println!("{report}");
}
