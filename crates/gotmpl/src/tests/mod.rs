//! Test corpus: `check(template, json, expected)` cases whose expectations
//! come from Go 1.19 (`oracle/regen.py`); `expected` is the output, or
//! `ERROR: ` followed by the error message.

use super::{Mode, Template};

mod exec;
mod funcs;
mod parse;
mod printf;
mod tabwriter;

pub(crate) const PLUGIN: &str = r#"{"Id":"5ae1c0f4b1e2c8d9a7f3e6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5","Name":"vieux/sshfs:latest","Enabled":false,"Settings":{"Mounts":[],"Env":["DEBUG=0"],"Args":[],"Devices":[]},"PluginReference":"docker.io/vieux/sshfs:latest","Config":{"Description":"sshFS plugin for Docker","Interface":{"Types":["docker.volumedriver/1.0"],"Socket":"sshfs.sock"},"Env":[{"Name":"DEBUG","Settable":["value"],"Value":"0"}]}}"#;

const ALIASES: &[(&str, &str)] = &[("ID", "Id")];

fn run(template: &str, json: &str, mode: Mode) -> String {
    let data: serde_json::Value = serde_json::from_str(json).expect("test JSON");
    let t = match Template::parse(template) {
        Ok(t) => t.with_aliases(ALIASES).mode(mode),
        Err(e) => return format!("ERROR: {e}"),
    };
    let mut out = String::new();
    match t.execute(&data, &mut out) {
        Ok(()) => out,
        Err(e) => format!("ERROR: {e}"),
    }
}

thread_local! {
    static FAILURES: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn record(what: &str, got: &str, expected: &str) {
    if got != expected {
        let msg = format!("{what}\n      got: {got:?}\n expected: {expected:?}");
        FAILURES.with(|f| f.borrow_mut().push(msg));
    }
}

/// Records a mismatch of `template` over `json` (reported by [`finish`]).
pub(crate) fn check(template: &str, json: &str, expected: &str) {
    record(
        &format!("template {template:?}"),
        &run(template, json, Mode::Normal),
        expected,
    );
}

/// Like [`check`], in [`Mode::Header`].
pub(crate) fn check_header(template: &str, json: &str, expected: &str) {
    record(
        &format!("header template {template:?}"),
        &run(template, json, Mode::Header),
        expected,
    );
}

/// Records a mismatch of [`super::tabwrite`].
pub(crate) fn check_tab(
    text: &str,
    minwidth: usize,
    tabwidth: usize,
    padding: usize,
    expected: &str,
) {
    record(
        &format!("tabwrite {text:?}"),
        &super::tabwrite(text, minwidth, tabwidth, padding),
        expected,
    );
}

/// Fails the test with every recorded mismatch.
pub(crate) fn finish() {
    let failures = FAILURES.with(|f| std::mem::take(&mut *f.borrow_mut()));
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn api() {
    let data = serde_json::json!({"Id": "abc", "ID": "real", "X": 1});
    // A real key wins over an alias; the alias is used only when the key is missing.
    let t = Template::parse("{{.ID}}")
        .expect("parses")
        .with_aliases(ALIASES);
    let mut out = String::new();
    t.execute(&data, &mut out).expect("runs");
    assert_eq!(out, "real");

    // Output before the failing action is kept, as with Go; `out` is appended to.
    let t = Template::parse("a{{.X}}b{{.Missing}}c").expect("parses");
    let mut out = String::from(">");
    let err = t.execute(&data, &mut out).expect_err("missing key");
    assert_eq!(out, ">a1b");
    let msg = r#"template: :1:10: executing "" at <.Missing>: map has no entry for key "Missing""#;
    assert_eq!(err.to_string(), msg);
    let _: &dyn std::error::Error = &err;

    assert_eq!(Mode::default(), Mode::Normal);
    let t = Template::parse("{{upper .}}")
        .expect("parses")
        .mode(Mode::Header);
    let mut out = String::new();
    t.execute(&serde_json::json!("NAME"), &mut out)
        .expect("runs");
    assert_eq!(out, "NAME");
}

/// Random token soup must never panic, whatever it parses to.
#[test]
fn no_panic_on_token_soup() {
    const TOKENS: &[&str] = &[
        "{{",
        "}}",
        "{{- ",
        " -}}",
        "{{/*",
        "*/}}",
        " ",
        "\n",
        ".",
        ".A",
        ".A.B",
        ".L",
        "$",
        "$x",
        "$x := ",
        " = ",
        "|",
        "(",
        ")",
        ",",
        "if ",
        "else ",
        "end",
        "range ",
        "with ",
        "break",
        "continue",
        "\"s\"",
        "`r`",
        "'c'",
        "1",
        "-2",
        "1.5",
        "0x1F",
        "nil",
        "true",
        "len ",
        "index ",
        "slice ",
        "printf ",
        "\"%5.2f|%-3s|%q|%d\" ",
        "eq ",
        "lt ",
        "and ",
        "or ",
        "not ",
        "json ",
        "split ",
        "join ",
        "title ",
        "pad ",
        "truncate ",
        "html ",
        "js ",
        "urlquery ",
        "print ",
        "println ",
        "\"\\x",
        "\"\\u00e9\"",
        "é",
        "#",
        "}",
        "{",
    ];
    let data = serde_json::json!({"A": {"B": [1, "x", null]}, "L": ["a", "b"], "S": "héllo"});
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..3000 {
        let mut src = String::new();
        let n = 1 + (seed >> 60);
        for _ in 0..n * 2 {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let idx = usize::try_from(seed >> 33).unwrap_or(0) % TOKENS.len();
            src.push_str(TOKENS[idx]);
        }
        if let Ok(t) = Template::parse(&src) {
            let mut out = String::new();
            let _ = t.execute(&data, &mut out);
        }
    }
}
