//! `Retry-After` and rate-limit header parsing: the input is `name: value` lines; the first
//! byte picks the status (429, 503 or 200). Nothing may panic, and no wait the server asks
//! for is accepted unbounded into the past or as a negative value.
#![no_main]

use drift_client::fuzzing::{link_header_next, rate_limit_reset, rate_limit_wait, retry_after};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let status = [429u16, 503, 200][usize::from(pick) % 3];
    let mut headers: Vec<(&str, &[u8])> = Vec::new();
    for line in rest.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let Ok(name) = std::str::from_utf8(&line[..colon]) else {
            continue;
        };
        let value = line[colon + 1..].trim_ascii();
        if let Ok(text) = std::str::from_utf8(value) {
            let _ = retry_after(text);
            let _ = rate_limit_reset(text);
        }
        headers.push((name.trim(), value));
    }
    let _ = rate_limit_wait(status, &headers);
    let links: Vec<&[u8]> = headers.iter().map(|(_, v)| *v).collect();
    let _ = link_header_next(&links);
});
