//! Stripe, through `async-stripe`: the client, its retry policy and error mapping
//! ([`client`]), and one customer per user ([`customers`]). The subscription sync that reads it
//! is the `sync` module, a layer above.

pub mod client;
pub mod customers;

pub use client::Billing;
