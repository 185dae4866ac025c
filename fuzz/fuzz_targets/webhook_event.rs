//! Any (signed) webhook body through the event parser and the accessors the webhook uses.
#![no_main]

use common::webhook::event::Event;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(event) = Event::parse(data) {
        let _ = event.customer();
    }
});
