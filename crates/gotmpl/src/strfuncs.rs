//! String functions: Docker's `--format` helpers (`json`, `split`, `join`,
//! `title`, `lower`, `upper`, `pad`, `truncate`) and Go's escapers (`html`,
//! `js`, `urlquery`).

use std::fmt::Write as _;

use serde_json::{Map, Value};

use super::printf;

/// Compact JSON like Go's `json.Encoder` with `SetEscapeHTML(false)` (objects
/// keep document order, as Docker's structs keep field order).
pub(crate) fn to_json(v: &Value) -> String {
    let mut out = String::new();
    write_json(v, &mut out);
    out
}

fn write_json(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => out.push_str(&super::float::json_float(f)),
            _ => out.push_str(&n.to_string()),
        },
        Value::String(s) => write_json_str(s, out),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(x, out);
            }
            out.push(']');
        }
        Value::Object(o) => write_json_obj(o, out),
    }
}

fn write_json_obj(o: &Map<String, Value>, out: &mut String) {
    out.push('{');
    for (i, (k, x)) in o.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json_str(k, out);
        out.push(':');
        write_json(x, out);
    }
    out.push('}');
}

fn write_json_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c < ' ' || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Go's `strings.Split`.
pub(crate) fn split(s: &str, sep: &str) -> Value {
    let parts: Vec<Value> = if sep.is_empty() {
        s.chars().map(|c| Value::String(c.to_string())).collect()
    } else {
        s.split(sep).map(|p| Value::String(p.to_string())).collect()
    };
    Value::Array(parts)
}

pub(crate) fn join(list: &Value, sep: &str) -> String {
    let Value::Array(items) = list else {
        return String::new();
    };
    let parts: Vec<String> = items
        .iter()
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => printf::format_value(other),
        })
        .collect();
    parts.join(sep)
}

/// Maps each char with a single-char case mapping, like Go's rune-wise
/// `unicode.ToUpper`/`ToLower` (multi-char expansions keep the char).
pub(crate) fn map_chars<I: Iterator<Item = char>>(s: &str, f: fn(char) -> I) -> String {
    s.chars()
        .map(|c| {
            let mut it = f(c);
            match (it.next(), it.next()) {
                (Some(m), None) => m,
                _ => c,
            }
        })
        .collect()
}

/// Go's `strings.Title`: upper-cases letters that start a word.
pub(crate) fn title(s: &str) -> String {
    let is_sep = |c: char| {
        if c.is_ascii() {
            !(c.is_ascii_alphanumeric() || c == '_')
        } else {
            !c.is_alphanumeric() && c.is_whitespace()
        }
    };
    let mut prev = ' ';
    s.chars()
        .map(|c| {
            let out = if is_sep(prev) {
                map_chars(&c.to_string(), char::to_uppercase)
            } else {
                c.to_string()
            };
            prev = c;
            out
        })
        .collect()
}

fn repeat_spaces(n: i64) -> Result<String, String> {
    usize::try_from(n)
        .map(|n| " ".repeat(n))
        .map_err(|_| "strings: negative Repeat count".into())
}

/// Docker's `pad`: empty stays empty, else spaces around.
pub(crate) fn pad(s: &str, prefix: i64, suffix: i64) -> Result<String, String> {
    if s.is_empty() {
        return Ok(String::new());
    }
    Ok(format!(
        "{}{s}{}",
        repeat_spaces(prefix)?,
        repeat_spaces(suffix)?
    ))
}

/// Docker's `truncate`, counting chars rather than bytes so UTF-8 is never split.
pub(crate) fn truncate(s: &str, n: i64) -> Result<String, String> {
    let Ok(n) = usize::try_from(n) else {
        return Err(format!("runtime error: slice bounds out of range [:{n}]"));
    };
    if s.chars().count() < n {
        return Ok(s.to_string());
    }
    Ok(s.chars().take(n).collect())
}

/// Go's `evalArgs`: a lone string as is, else `fmt.Sprint` of the arguments
/// (a null prints `<no value>`, as Go's nil interface does there).
pub(crate) fn eval_args(args: &[Value]) -> String {
    if let [Value::String(s)] = args {
        return s.clone();
    }
    let no_value = Value::String("<no value>".into());
    let args: Vec<Value> = args
        .iter()
        .map(|a| {
            if a.is_null() {
                no_value.clone()
            } else {
                a.clone()
            }
        })
        .collect();
    printf::sprint(&args)
}

/// Go's `template.HTMLEscapeString`.
pub(crate) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\0' => out.push('\u{fffd}'),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Go's `template.JSEscapeString`.
pub(crate) fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' | '>' | '&' | '=' => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c if c < ' ' || (!c.is_ascii() && !printf::is_print(c)) => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

/// Go's `url.QueryEscape`.
pub(crate) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            b => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}
