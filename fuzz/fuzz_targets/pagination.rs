//! Pagination cursor handling: the input is a script of pages separated by 0xFF; each
//! page's first byte says what it returns (0 end, 1 legacy cursor, 2 next link, 3 more
//! without cursor) and the rest is the cursor or link text. The real loop must stop within
//! the page cap, yield consecutive page numbers, end on at most one error, and never accept
//! a next link to another host.
#![no_main]

use drift_client::fuzzing::{drive_pages, next_link, Step};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let script: Vec<Step> = data
        .split(|b| *b == 0xFF)
        .take(200)
        .map(|chunk| {
            let text = String::from_utf8_lossy(chunk.get(1..).unwrap_or_default()).into_owned();
            match chunk.first().map(|b| b % 4) {
                None | Some(0) => Step::End,
                Some(1) => Step::Legacy(text),
                Some(2) => Step::Link(text),
                _ => Step::Missing,
            }
        })
        .collect();
    for step in &script {
        if let Step::Link(link) = step {
            if let Ok(Some(cursor)) = next_link(link) {
                let url = url_of(&cursor.0);
                assert_eq!(
                    url.host_str(),
                    Some("driftapi.com"),
                    "{link:?} -> {cursor:?}"
                );
                assert_eq!(url.scheme(), "https", "{link:?}");
            }
        }
    }
    let pages = drive_pages(script);
    assert!(pages.len() <= 66, "the page cap (64) did not stop the loop");
    for (i, page) in pages.iter().enumerate() {
        match page {
            Ok(n) => assert_eq!(*n as usize, i + 1, "page numbers must be consecutive"),
            Err(_) => assert_eq!(i + 1, pages.len(), "nothing may follow an error"),
        }
    }
});

fn url_of(cursor: &str) -> url::Url {
    let base = url::Url::parse(drift_client::fuzzing::FUZZ_BASE).expect("constant base");
    base.join(cursor.trim_start_matches('/'))
        .expect("a stored cursor is a valid relative URL")
}
