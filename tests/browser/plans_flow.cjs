// Two plans in headless Chromium, against a running local-api on the Stripe sandbox started
// with PLANS=plus:price_plus:<plus>,pro:price_pro:<pro> and MESSAGE_PRICES=default:1,large:<large>.
// The catalogue, checkout of the second plan's sibling, messages at two prices, then an
// upgrade, a switch back and a renewal on the portal, with the public API asked after each.
// Usage: node plans_flow.cjs <local-api base URL> <plus credits> <pro credits> <large price> <screenshot dir>
// (helpers, Chromium and playwright-core: browser.cjs).
'use strict';
const assert = require('node:assert/strict');
const browser = require('./browser.cjs');

const [base, plusArg, proArg, largeArg, shots] = process.argv.slice(2);
const [plus, pro, large] = [Number(plusArg), Number(proArg), Number(largeArg)];
const call = (method, route, token, body) => browser.call(base, method, route, token, body);
const step = (name, page) => browser.step(shots, name, page);
const { clickAndReload } = browser;

browser.run(async (page) => {
  const { access_token: token } = await call('GET', '/local/token');
  const status = () => call('GET', '/v1/user/status', token);

  // The catalogue: both plans in their order, priced by the sandbox in proportion to credits.
  const catalogue = await call('GET', '/v1/billing/plans', token);
  assert.equal(catalogue.default_plan, 'plus', JSON.stringify(catalogue));
  assert.deepEqual(catalogue.plans.map((p) => [p.id, p.credits_per_period]), [['plus', plus], ['pro', pro]]);
  const [plusPrice, proPrice] = catalogue.plans.map((p) => p.price);
  assert.ok(plusPrice && proPrice, `both prices read from Stripe: ${JSON.stringify(catalogue)}`);
  assert.equal(plusPrice.currency, 'usd');
  assert.equal(proPrice.amount * plus, plusPrice.amount * pro, 'prices in proportion to credits');

  // Checkout of plus, chosen by the body.
  const { checkout_url: checkout } = await call('POST', '/v1/stripe/create-checkout-session', token, { plan: 'plus' });
  await page.goto(checkout);
  assert.equal(await page.textContent('#plan'), 'plus');
  await step('plans-1-checkout', page);
  await Promise.all([page.waitForURL(/\/done\/checkout-success$/), page.click('#pay')]);
  let now = await status();
  assert.deepEqual([now.current_plan, now.credits_remaining], ['plus', plus], JSON.stringify(now));

  // One message to a small model, one to a large one: 1 + large credits.
  assert.equal((await call('POST', '/local/debit', token)).remaining, plus - 1);
  assert.equal((await call('POST', '/local/debit?model=large', token)).remaining, plus - 1 - large);
  const left = plus - 1 - large;

  // Upgrade to pro on the portal: what is left plus pro's credits beyond plus's.
  const { portal_url: portal } = await call('POST', '/v1/stripe/create-portal-session', token);
  await page.goto(portal);
  assert.equal(await page.textContent('#plan'), 'plus');
  await step('plans-2-portal', page);
  await clickAndReload(page, '#switch-1', portal);
  assert.equal(await page.textContent('#plan'), 'pro');
  await step('plans-3-upgraded', page);
  now = await status();
  assert.deepEqual([now.current_plan, now.credits_remaining], ['pro', left + pro - plus], JSON.stringify(now));

  // Back to plus in the same period: nothing granted, nothing taken.
  await clickAndReload(page, '#switch-0', portal);
  assert.equal(await page.textContent('#plan'), 'plus');
  now = await status();
  assert.deepEqual([now.current_plan, now.credits_remaining], ['plus', left + pro - plus], JSON.stringify(now));

  // Up again in the same period: pro's credits were already granted in it, so nothing more.
  await clickAndReload(page, '#switch-1', portal);
  now = await status();
  assert.deepEqual([now.current_plan, now.credits_remaining], ['pro', left + pro - plus], JSON.stringify(now));
  await clickAndReload(page, '#switch-0', portal);

  // The renewal grants the plan held now, plus, in full.
  await clickAndReload(page, '#renew', portal);
  await step('plans-4-renewed', page);
  now = await status();
  assert.deepEqual([now.current_plan, now.credits_remaining], ['plus', plus], JSON.stringify(now));

  // The history: two period grants of plus, one upgrade of pro's difference, two messages.
  const { entries } = await call('GET', '/v1/user/credits', token);
  const of = (kind) => entries.filter((e) => e.kind === kind);
  const upgrades = of('plan_upgrade');
  assert.equal(upgrades.length, 1, JSON.stringify(entries));
  assert.deepEqual([upgrades[0].granted, upgrades[0].amount], [pro, pro - plus]);
  assert.deepEqual(of('period_grant').map((e) => e.granted), [plus, plus]);
  assert.equal(of('usage').reduce((sum, e) => sum + e.amount, 0), -(1 + large));
  console.log(`ok: ${entries.length} entries`);
});
