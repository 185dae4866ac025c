//! Helpers of the workspace's end-to-end tests.
//!
//! | module | for |
//! |---|---|
//! | [`emulator`] | the DynamoDB emulator the test command started (moto server on loopback), behind IAM |
//! | [`iam`] | IAM as deployed: each function's policy from `template.yaml`, each call's actions |
//! | [`tokens`] | minting access tokens like the auth provider's |
//! | [`runtime_api`] | a Lambda Runtime API emulator that drives the real function binaries |
//! | [`binaries`] | finding and starting the workspace's binaries |
//! | [`conformance`] | the store conformance suite, run against every `Store` |
//! | [`ledger_conformance`] | its credit-ledger part: entries, the invariant |
//! | [`ledger_property`] | the ledger's property test: random sequences, the invariant after each step |
//! | [`faulty_store`] | a store wrapper that injects failures and logs calls |
//! | [`storage_faults`] | a proxy before the DynamoDB emulator injecting throttling, 5xx, hangs, drops, lost replies |
//! | [`openapi`] | checking actual responses against `openapi.yaml` |
//! | [`stripe_stub`] | a loopback Stripe answering with Stripe's official fixtures |
//! | [`apps`] | apps and requests for calling the handlers directly |
//! | [`auth_admin_stub`] | a loopback stand-in of the auth service's admin API (deleting logins) |

pub mod apps;
pub mod auth_admin_stub;
pub mod binaries;
pub mod conformance;
pub mod emulator;
pub mod faulty_store;
pub mod holdings_conformance;
pub mod iam;
pub mod ledger_conformance;
pub mod ledger_property;
pub mod openapi;
pub mod runtime_api;
pub mod storage_faults;
pub mod stripe_stub;
pub mod suite_secrets;
pub mod tokens;

/// The shortest `Timeout` of a function in `template.yaml` (user-status's 10 s). A test of a
/// fault (a hang, a service that keeps failing) checks that the answer comes before it: that is
/// the contract (the function answers with its own JSON error before Lambda stops it), and it
/// holds on any machine, since what fills the time is the timeouts and back-offs, not the CPU.
pub const FUNCTION_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);
