//! The end-to-end suites in one test binary, each file a module. One binary links once and
//! takes ~90 MB of `target/`, where one binary per file took 24 links and ~2 GB: the suite must
//! build on a machine with little disk to spare (CI ran out of it). Pick a suite by its module
//! path, e.g. `./scripts/test store_conformance::`. `hostile_tokens.rs`, which reads the logs of
//! its process, is a binary of its own (tests/Cargo.toml).

mod admin;
mod api_fuzzing;
mod billing_endpoints;
mod browser;
mod credits;
mod deadlines;
mod delete_account;
mod deleted_customers;
mod erasure_everywhere;
mod events;
mod export;
mod flows_meet;
mod grants;
mod io_counts;
mod lambda_billing;
mod lambda_user_status;
mod limits;
mod load;
mod local_api;
mod openapi_contract;
mod packs;
mod plans;
mod reconcile;
mod reconcile_sim;
mod refunds;
mod sandbox;
mod secrets;
mod storage_faults;
mod store_conformance;
mod template_rules;
mod trust;
mod user_status;
mod webhook;
