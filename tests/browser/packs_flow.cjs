// Credit packs in headless Chromium, against a running local-api on the Stripe sandbox started
// with CREDIT_PACKS=small:price_small:<small>,large:price_large:<large>, for a free user: the
// catalogue's packs, a small pack paid by card, a message paid from it, a large pack paid by
// bank debit (nothing until it settles; then succeeded on the sandbox's deliveries page), the
// history, a priced message paid from the packs, and half the small pack refunded from the
// dashboard, with the public API asked after each step.
// Usage: node packs_flow.cjs <local-api base URL> <small credits> <large credits> <screenshot dir>
// (helpers, Chromium and playwright-core: browser.cjs).
'use strict';
const assert = require('node:assert/strict');
const browser = require('./browser.cjs');

const [base, smallArg, largeArg, shots] = process.argv.slice(2);
const [small, large] = [Number(smallArg), Number(largeArg)];
const call = (method, route, token, body) => browser.call(base, method, route, token, body);
const step = (name, page) => browser.step(shots, name, page);

browser.run(async (page) => {
  const { access_token: token } = await call('GET', '/local/token');
  const status = () => call('GET', '/v1/user/status', token);
  const purchased = async () => (await call('GET', '/v1/user/credits', token)).purchased_credits;

  // The catalogue lists both packs, each with its one-time price read from the sandbox.
  const catalogue = await call('GET', '/v1/billing/plans', token);
  assert.deepEqual(catalogue.packs.map((p) => [p.id, p.credits]), [['small', small], ['large', large]]);
  assert.ok(catalogue.packs.every((p) => p.price && p.price.interval === 'once'), JSON.stringify(catalogue));

  // The small pack, paid by card: its credits at once, the user still free.
  const { checkout_url: first } = await call('POST', '/v1/stripe/create-credit-pack-session', token, { pack: 'small' });
  await page.goto(first);
  assert.equal(await page.textContent('#pack'), 'small');
  await step('packs-1-checkout', page);
  await Promise.all([page.waitForURL(/\/done\/checkout-success$/), page.click('#pay')]);
  let now = await status();
  assert.deepEqual([now.current_plan, now.credits_remaining], ['free', small], JSON.stringify(now));

  // A free message first, as the free-message rule says: the pack is untouched.
  const free = now.free_messages_remaining;
  await call('POST', '/local/debit', token);
  now = await status();
  assert.deepEqual([now.free_messages_remaining, now.credits_remaining], [free - 1, small]);

  // The large pack by bank debit: nothing until the debit settles.
  const { checkout_url: second } = await call('POST', '/v1/stripe/create-credit-pack-session', token, { pack: 'large' });
  await page.goto(second);
  await Promise.all([page.waitForURL(/\/done\/checkout-success$/), page.click('#pay-later')]);
  assert.equal(await purchased(), small, 'a processing debit grants nothing');
  const deliveries = `${new URL(second).origin}/`;
  await page.goto(deliveries);
  await step('packs-2-processing', page);
  await browser.clickAndReload(page, '#processing button.primary', deliveries);
  assert.equal(await purchased(), small + large, 'the settled debit grants the large pack');

  // The history: one pack_purchase per pack, on the purchased balance (two sessions opened in
  // the same second are listed in the order of their ids, so they are compared by amount).
  const { entries } = await call('GET', '/v1/user/credits', token);
  const packs = entries.filter((e) => e.kind === 'pack_purchase')
    .map((e) => [e.balance, e.amount, e.description])
    .sort((a, b) => a[1] - b[1]);
  assert.deepEqual(packs, [['purchased', small, 'small pack'], ['purchased', large, 'large pack']],
    JSON.stringify(entries));
  await step('packs-3-history', page);

  // A message of a model priced at 10 credits is paid from the packs (the older first), then
  // half the small pack's payment is refunded from the sandbox's dashboard: half its credits
  // are taken back, from what is left of it, and the history says so.
  await call('POST', '/local/debit?model=large', token);
  assert.equal(await purchased(), small + large - 10);
  await page.goto(deliveries);
  const smallRow = `#payments tr:has(td:nth-child(2):text-is("${small}"))`;
  await browser.clickAndReload(page, `${smallRow} form[action$="/refund-half"] button`, deliveries);
  await step('packs-4-refunded', page);
  const taken = Math.floor(small / 2);
  assert.equal(await purchased(), small + large - 10 - taken, 'half the small pack taken back');
  const after = await call('GET', '/v1/user/credits', token);
  const refunds = after.entries.filter((e) => e.kind === 'payment_refunded')
    .map((e) => [e.balance, e.amount]);
  assert.deepEqual(refunds, [['purchased', -taken]], JSON.stringify(after.entries));
  assert.equal(after.purchased_credits, (await status()).credits_remaining);
});
