// The billing flow in headless Chromium, as a person would click it, against a running
// local-api on the Stripe sandbox. After each step the public API is asked what it now says.
// Usage: node billing_flow.cjs <local-api base URL> <plan credits> <screenshot dir>
// (helpers, Chromium and playwright-core: browser.cjs).
'use strict';
const assert = require('node:assert/strict');
const browser = require('./browser.cjs');

const [base, planCredits, shots] = process.argv.slice(2);
const credits = Number(planCredits);
const call = (method, route, token) => browser.call(base, method, route, token);
const step = (name, page) => browser.step(shots, name, page);
const { clickAndReload } = browser;

browser.run(async (page) => {
  const { access_token: token } = await call('GET', '/local/token');
  const status = () => call('GET', '/v1/user/status', token);
  assert.equal((await status()).has_subscription, false);

  // 1. Checkout: Pay, then the status shows the subscription and the plan's credits.
  const { checkout_url: checkout } = await call('POST', '/v1/stripe/create-checkout-session', token);
  await page.goto(checkout);
  await step('1-checkout', page);
  await Promise.all([page.waitForURL(/\/done\/checkout-success$/), page.click('#pay')]);
  await step('2-paid', page);
  let now = await status();
  assert.equal(now.has_subscription, true, JSON.stringify(now));
  assert.equal(now.subscription_status, 'active');
  assert.equal(now.credits_remaining, credits, JSON.stringify(now));

  // Paying the same session again is refused and changes nothing.
  await page.goto(checkout);
  assert.match(await page.textContent('#error'), /already paid/);

  // Spend three credits, as the chat service would.
  const spent = [];
  for (let i = 0; i < 3; i += 1) spent.push((await call('POST', '/local/debit', token)).message_id);
  assert.equal((await status()).credits_remaining, credits - 3);

  // 2. Portal: renew, and the new invoice grants the plan's credits once more.
  const { portal_url: portal } = await call('POST', '/v1/stripe/create-portal-session', token);
  await page.goto(portal);
  await step('3-portal', page);
  await clickAndReload(page, '#renew', portal);
  await step('4-renewed', page);
  now = await status();
  assert.equal(now.has_subscription, true, JSON.stringify(now));
  assert.equal(now.credits_remaining, credits, JSON.stringify(now));

  // A message of the last period whose model call failed now gives nothing back (that
  // period's credits expired with it); one of this period, debited and refunded, does.
  const lapsed = await call('POST', `/local/refund?message_id=${spent[0]}`, token);
  assert.equal(lapsed.outcome, 'lapsed');
  const { message_id: failedMessage } = await call('POST', '/local/debit', token);
  assert.equal((await call('POST', `/local/refund?message_id=${failedMessage}`, token)).outcome, 'refunded');

  // The history shows exactly that, newest first, and sums to the balances.
  const history = await call('GET', '/v1/user/credits', token);
  assert.equal(history.credits_remaining, credits, JSON.stringify(history));
  assert.equal(history.next_cursor, null);
  const entries = history.entries;
  const of = (kind) => entries.filter((e) => e.kind === kind);
  const total = (kind, field) => of(kind).reduce((sum, e) => sum + e[field], 0);
  assert.deepEqual([...new Set(entries.map((e) => e.kind))].sort(),
    ['message_refund', 'period_grant', 'usage'], JSON.stringify(entries));
  const grants = of('period_grant');
  assert.equal(grants.length, 2, JSON.stringify(entries));
  assert.ok(grants[0].at >= grants[1].at, 'newest first');
  assert.deepEqual([grants[1].granted, grants[1].expired, grants[1].amount], [credits, 0, credits]);
  assert.deepEqual([grants[0].granted, grants[0].expired, grants[0].amount], [credits, credits - 3, 3]);
  assert.match(grants[0].description, /^pro plan, period to \d{4}-\d{2}-\d{2}$/);
  assert.deepEqual([total('usage', 'messages'), total('usage', 'amount')], [4, -4]);
  assert.deepEqual([total('message_refund', 'messages'), total('message_refund', 'amount')], [1, 1]);
  const credited = entries.filter((e) => e.balance === 'credits').reduce((s, e) => s + e.amount, 0);
  assert.equal(credited, history.credits_remaining, 'the balance is the sum of its entries');
  assert.ok(entries.every((e) => !JSON.stringify(e).includes(failedMessage)), 'no message id is shown');
  await page.setExtraHTTPHeaders({ authorization: `Bearer ${token}` });
  await page.goto(base + '/v1/user/credits');
  await step('5-history', page);
  await page.setExtraHTTPHeaders({});
  await page.goto(portal);

  // 3. Cancel now: the free plan and no credits.
  await clickAndReload(page, '#cancel-now', portal);
  await step('6-canceled', page);
  now = await status();
  assert.equal(now.has_subscription, false, JSON.stringify(now));
  assert.equal(now.current_plan, 'free');
  assert.equal(now.subscription_status, 'canceled');
  assert.equal(now.credits_remaining, 0, JSON.stringify(now));
  assert.equal(await page.textContent('#status'), 'No active subscription.');

  // Every event was delivered, and the log page lists them.
  const sandbox = new URL(checkout).origin;
  await page.goto(sandbox + '/');
  await step('7-deliveries', page);
  const deliveries = await (await fetch(sandbox + '/deliveries.json')).json();
  const kinds = deliveries.map((d) => d.type);
  for (const kind of ['checkout.session.completed', 'customer.subscription.created', 'invoice.paid',
    'customer.subscription.updated', 'customer.subscription.deleted']) {
    assert.ok(kinds.includes(kind), `${kind} delivered: ${kinds}`);
  }
  const failed = deliveries.filter((d) => !d.delivered);
  assert.deepEqual(failed, [], 'every delivery answered 2xx');
  console.log(`ok: ${deliveries.length} deliveries`);
});
