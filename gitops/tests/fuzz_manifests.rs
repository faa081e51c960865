//! Property test over manifests: random mutations of the sample manifests (`examples/gitops/`)
//! — truncation, bad indentation, wrong types, deep nesting, huge numbers, NUL and control
//! characters, invalid UTF-8, duplicated and deleted lines, anchors — must never panic the
//! parser, and every rejection must name a file of the revision and a line and column inside it.
//!
//! Bounded in the normal suite (`FUZZ_MANIFEST_CASES`, default 300 mutated revisions); run
//! longer with `scripts/bench fuzz-manifests`, which prints the figures recorded in
//! BENCHMARKS.md.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::BTreeMap,
    panic::{AssertUnwindSafe, catch_unwind},
    path::Path,
    time::Instant,
};

use linkplane_gitops::{
    manifest::SourceFile,
    reader::{self, Files, Source},
};
use proptest::{
    prelude::*,
    test_runner::{Config, TestCaseError, TestRunner},
};

fn samples() -> Vec<SourceFile> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/gitops");
    let read = reader::read(Source::Dir(&dir)).expect("examples readable");
    assert!(read.refused.is_empty(), "{:?}", read.refused);
    assert!(read.parse().is_ok(), "the samples must be valid");
    read.files
}

/// One edit of one file's bytes; positions are taken modulo the file's length.
#[derive(Debug, Clone)]
enum Mutation {
    /// Cut the file at a position.
    Truncate(usize),
    /// Add (or, when negative, remove) leading spaces on a line.
    Indent(usize, i8),
    /// Replace the value after the first `: ` of a line.
    Value(usize, &'static str),
    /// Insert `n` nested flow sequences or mappings as a line's value.
    NestFlow(usize, usize, bool),
    /// Insert `n` levels of block mappings after a line.
    NestBlock(usize, usize),
    /// Insert raw bytes (control characters, NUL, invalid UTF-8) at a position.
    Bytes(usize, Vec<u8>),
    /// Duplicate a line.
    DupLine(usize),
    /// Delete a line.
    DelLine(usize),
    /// Flip one byte.
    Flip(usize, u8),
}

/// Values of the wrong type, huge numbers and YAML oddities for [`Mutation::Value`].
const VALUES: &[&str] = &[
    "[]",
    "{}",
    "\"text\"",
    "-1",
    "0",
    "true",
    "~",
    "[a, [b, {c: d}]]",
    "99999999999999999999999999999999999999",
    "-9223372036854775809",
    "18446744073709551616",
    "1e999",
    "-.inf",
    ".nan",
    "0x7fffffffffffffffffff",
    "0o777777777777777777777777",
    "&a [1, 2]",
    "*a",
    "*undefined",
    "!!binary AAAA",
    "!custom x",
    "? complex\n: key",
    "|\n  block",
    ">-",
    "'unterminated",
    "\"\\x00\\u0000\"",
    "\"a\\tb\\u2028c\"",
    "<<: *a",
    "2024-01-01T00:00:00Z",
    "1:2:3",
];

/// Raw insertions: NUL, C0 and C1 controls, a BOM, line and paragraph separators, and bytes that
/// are not UTF-8.
const BYTES: &[&[u8]] = &[
    b"\0",
    b"\x01",
    b"\x07",
    b"\x08",
    b"\x0b",
    b"\x0c",
    b"\x1b[31m",
    b"\x7f",
    b"\r",
    b"\r\n",
    b"\t",
    "\u{85}".as_bytes(),
    "\u{2028}".as_bytes(),
    "\u{feff}".as_bytes(),
    b"\xff",
    b"\xc3",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"---\n",
    b"...\n",
    b"%YAML 1.1\n",
    b"#",
    b": ",
    b"- ",
];

fn mutation() -> impl Strategy<Value = Mutation> {
    let pos = 0usize..100_000;
    prop_oneof![
        pos.clone().prop_map(Mutation::Truncate),
        (pos.clone(), -4i8..=4).prop_map(|(l, d)| Mutation::Indent(l, d)),
        (pos.clone(), proptest::sample::select(VALUES)).prop_map(|(l, v)| Mutation::Value(l, v)),
        (pos.clone(), 1usize..2_000, any::<bool>())
            .prop_map(|(l, n, map)| Mutation::NestFlow(l, n, map)),
        (pos.clone(), 1usize..300).prop_map(|(l, n)| Mutation::NestBlock(l, n)),
        (
            pos.clone(),
            proptest::collection::vec(proptest::sample::select(BYTES), 1..4)
        )
            .prop_map(|(p, parts)| Mutation::Bytes(p, parts.concat())),
        pos.clone().prop_map(Mutation::DupLine),
        pos.clone().prop_map(Mutation::DelLine),
        (pos, any::<u8>()).prop_map(|(p, b)| Mutation::Flip(p, b)),
    ]
}

/// Line boundaries as (start, end-exclusive-of-newline) byte ranges.
fn lines(text: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, b) in text.iter().enumerate() {
        if *b == b'\n' {
            out.push((start, i));
            start = i + 1;
        }
    }
    out.push((start, text.len()));
    out
}

fn apply(text: &mut Vec<u8>, m: &Mutation) {
    let ls = lines(text);
    let line = |i: usize| ls[i % ls.len()];
    match m {
        Mutation::Truncate(p) => text.truncate(p % (text.len() + 1)),
        Mutation::Indent(l, d) => {
            let (s, _) = line(*l);
            if *d >= 0 {
                let spaces = vec![b' '; usize::from(d.unsigned_abs())];
                text.splice(s..s, spaces);
            } else {
                let n = text[s..]
                    .iter()
                    .take(usize::from(d.unsigned_abs()))
                    .take_while(|b| **b == b' ')
                    .count();
                text.drain(s..s + n);
            }
        }
        Mutation::Value(l, v) => {
            let (s, e) = line(*l);
            if let Some(colon) = text[s..e].windows(2).position(|w| w == b": ") {
                text.splice(s + colon + 2..e, v.bytes());
            } else {
                text.splice(e..e, format!(": {v}").into_bytes());
            }
        }
        Mutation::NestFlow(l, n, map) => {
            let (_, e) = line(*l);
            let (open, close) = if *map { ("{k: ", "}") } else { ("[", "]") };
            let value = format!(" {}x{}", open.repeat(*n), close.repeat(*n));
            text.splice(e..e, value.into_bytes());
        }
        Mutation::NestBlock(l, n) => {
            let (s, e) = line(*l);
            let indent = text[s..e].iter().take_while(|b| **b == b' ').count();
            let block: String = (1..=*n)
                .map(|i| format!("\n{}k{i}:", " ".repeat(indent + 2 * i)))
                .collect();
            text.splice(e..e, block.into_bytes());
        }
        Mutation::Bytes(p, bytes) => {
            let at = p % (text.len() + 1);
            text.splice(at..at, bytes.iter().copied());
        }
        Mutation::DupLine(l) => {
            let (s, e) = line(*l);
            let mut copy = text[s..e].to_vec();
            copy.push(b'\n');
            text.splice(s..s, copy);
        }
        Mutation::DelLine(l) => {
            let (s, e) = line(*l);
            text.drain(s..(e + 1).min(text.len()));
        }
        Mutation::Flip(p, b) => {
            if !text.is_empty() {
                let at = p % text.len();
                text[at] = *b;
            }
        }
    }
}

/// What one case did, for the figures.
#[derive(Default, Debug)]
struct Stats {
    cases: usize,
    rejected: usize,
    accepted: usize,
    diagnostics: usize,
    max_case_ms: u128,
}

fn check(
    samples: &[SourceFile],
    edits: &[(usize, Mutation)],
    stats: &mut Stats,
) -> Result<(), TestCaseError> {
    let mut files = samples.to_vec();
    for (f, m) in edits {
        let i = f % files.len();
        apply(&mut files[i].content, m);
    }
    let t = Instant::now();
    let revision = Files {
        files: files.clone(),
        refused: vec![],
    };
    let parsed = catch_unwind(AssertUnwindSafe(|| revision.parse()));
    stats.max_case_ms = stats.max_case_ms.max(t.elapsed().as_millis());
    stats.cases += 1;
    let Ok(parsed) = parsed else {
        return Err(TestCaseError::fail("the parser panicked"));
    };
    let Err(diags) = parsed else {
        stats.accepted += 1;
        return Ok(());
    };
    stats.rejected += 1;
    stats.diagnostics += diags.0.len();
    prop_assert!(!diags.0.is_empty(), "a rejection without diagnostics");
    let breaks: BTreeMap<&str, u32> = files
        .iter()
        .map(|f| {
            let n = f
                .content
                .iter()
                .filter(|b| matches!(b, b'\n' | b'\r'))
                .count();
            (f.path.as_str(), u32::try_from(n).unwrap_or(u32::MAX))
        })
        .collect();
    for d in &diags.0 {
        let Some(&n) = breaks.get(d.file.as_str()) else {
            return Err(TestCaseError::fail(format!(
                "diagnostic names no file of the revision: {d}"
            )));
        };
        prop_assert!(d.line >= 1 && d.col >= 1, "unlocated: {}", d);
        prop_assert!(d.line <= n + 1, "line past the end of the file: {}", d);
        prop_assert!(!d.message.trim().is_empty(), "empty message: {}", d);
        // parse_files turns a panicking YAML thread into this diagnostic: still a bug.
        prop_assert!(
            !d.message.contains("the YAML parser failed"),
            "a YAML parser thread panicked: {}",
            d
        );
        let shown = d.to_string();
        prop_assert!(
            shown.starts_with(&format!("{}:{}:{}: ", d.file, d.line, d.col)),
            "not file:line:col: {}",
            shown
        );
    }
    Ok(())
}

/// Mutated sample manifests never panic the parser, and every rejection is located.
#[test]
fn mutated_manifests_never_panic_and_every_rejection_is_located() {
    let cases: u32 = std::env::var("FUZZ_MANIFEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let samples = samples();
    let mut runner = TestRunner::new(Config {
        cases,
        // Failures print the minimal mutation list; no regression files in the tree.
        failure_persistence: None,
        ..Config::default()
    });
    let stats = std::cell::RefCell::new(Stats::default());
    let t = Instant::now();
    let strategy = proptest::collection::vec((0usize..64, mutation()), 1..5);
    let result = runner.run(&strategy, |edits| {
        check(&samples, &edits, &mut stats.borrow_mut())
    });
    let elapsed = t.elapsed();
    let stats = stats.into_inner();
    println!(
        "fuzz-manifests: {} mutated revisions in {:.1}s ({:.0}/s): {} rejected ({} diagnostics, all located), {} still valid, 0 panics; slowest parse {} ms",
        stats.cases,
        elapsed.as_secs_f64(),
        stats.cases as f64 / elapsed.as_secs_f64().max(1e-9),
        stats.rejected,
        stats.diagnostics,
        stats.accepted,
        stats.max_case_ms
    );
    if let Err(e) = result {
        panic!("{e}");
    }
    assert!(
        stats.rejected > 0,
        "the mutations must reject some revisions"
    );
}
