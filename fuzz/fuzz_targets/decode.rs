//! Drift response decoding, every envelope: the first byte picks the envelope
//! (`Envelope::ALL[b % 14]`), the rest is the response body. Nothing may panic, and a decode
//! error never carries the client's token even when the body echoes it.
#![no_main]

use drift_client::fuzzing::{decode_envelope, Envelope, FUZZ_TOKEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let envelope = Envelope::ALL[usize::from(pick) % Envelope::ALL.len()];
    match decode_envelope(envelope, body) {
        Ok(decoded) => {
            if let Ok(Some(cursor)) = &decoded.next {
                assert!(
                    !cursor.0.is_empty(),
                    "an empty cursor would restart the pass"
                );
            }
        }
        Err(e) => assert!(!e.to_string().contains(FUZZ_TOKEN), "token in {e}"),
    }
});
