//! The push input readers: the bytes are written to a file and read as CSV (first byte
//! even) or JSONL (odd), as `driftbridge push --from FILE` does. Nothing may panic; every
//! row is either read or an error naming its row number, numbered 1, 2, 3, ... (a results
//! file of an earlier push keeps the row numbers written in it, in any order).
#![no_main]

use libfuzzer_sys::fuzz_target;
use drift_writer::InputSpec;
use std::io::Write;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("driftbridge-fuzz-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(if pick % 2 == 0 { "in.csv" } else { "in.jsonl" });
    let mut file = std::fs::File::create(&path).expect("temp file");
    file.write_all(body).expect("write temp file");
    drop(file);
    let spec = InputSpec::parse(path.to_str().expect("utf-8 temp path")).expect("a file path");
    let Ok(input) = spec.open() else {
        return; // a whole-input error (bad header): named, nothing read
    };
    let ordered = !input.is_results;
    let mut last = 0u64;
    for row in input.rows.take(100_000) {
        let number = match row {
            Ok(r) => r.number,
            Err(e) => e.row.expect("a row error names its row"),
        };
        assert!(
            !ordered || number > last,
            "row numbers must increase: {number} after {last}"
        );
        last = number;
    }
});
