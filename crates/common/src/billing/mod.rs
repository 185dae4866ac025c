//! Stripe, through `async-stripe`: the client, its retry policy and error mapping
//! ([`client`]), one customer per user ([`customers`]), and the subscription sync shared by the
//! sync endpoint and the webhook ([`sync`]).

pub mod client;
pub mod customers;
pub mod sync;

pub use client::Billing;
