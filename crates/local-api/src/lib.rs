//! The local API: every endpoint at its real path, through the same handler code as the Lambdas
//! (see `main.rs`), and the route table the tests share.
//!
//! | module | holds |
//! |---|---|
//! | [`routes`] | the API's routes and the dispatch to each function's handler |
//! | [`cors`] | CORS as the stack's HTTP API answers it, for browser clients |
//! | [`dev`] | local defaults: a generated development secret, tokens, the Stripe sandbox |
//! | [`local_routes`] | `/local/token` and `/local/debit`, which only the local API has |
//! | [`server`] | the HTTP/1 server turning requests into API Gateway-shaped ones |

pub mod cors;
pub mod dev;
pub mod local_routes;
pub mod routes;
pub mod server;
