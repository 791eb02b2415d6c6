//! Decoding of literals: quoted strings, character constants and numbers,
//! following Go's `strconv.Unquote` and `text/template/parse` number rules.

use super::parse::Ideal;
use super::printf::quote;

/// Decodes a number or character constant token into its untyped value and
/// its value where an integer is required; the error is Go's parse message.
pub(crate) fn number(text: &str, is_char: bool) -> Result<(Ideal, Option<i64>), String> {
    let q = || quote(text, '"', false);
    if is_char {
        let inner = &text[1..text.len() - 1];
        let Some((c, tail)) = unquote_char(inner, '\'') else {
            return Err("invalid syntax".into());
        };
        if !tail.is_empty() || inner.is_empty() {
            return Err(format!("malformed character constant: {text}"));
        }
        let v = i64::from(u32::from(c));
        return Ok((Ideal::Int(v), Some(v)));
    }
    if text.ends_with('i') {
        return Err(format!("complex number {} is not supported", q()));
    }
    let (int, uint) = parse_int(text);
    #[allow(clippy::cast_precision_loss)]
    let float = int
        .map(|v| v as f64)
        .or(uint.map(|v| v as f64))
        .or_else(|| {
            let clean = text.replace('_', "");
            clean
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite() && !clean.contains(['x', 'X']))
        });
    let Some(f) = float else {
        return Err(format!("illegal number syntax: {}", q()));
    };
    let looks_float = !is_hex(text) && text.contains(['.', 'e', 'E', 'p', 'P']);
    if int.is_none() && uint.is_none() && !looks_float {
        return Err(format!("integer overflow: {}", q()));
    }
    #[allow(clippy::cast_possible_truncation)]
    let as_int = int.or_else(|| (f.fract() == 0.0 && f.abs() < 9.2e18).then_some(f as i64));
    let ideal = if looks_float {
        Ideal::Float(f)
    } else {
        int.map_or(Ideal::Overflow, Ideal::Int)
    };
    Ok((ideal, as_int))
}

fn is_hex(text: &str) -> bool {
    let t = text.trim_start_matches(['+', '-']);
    (t.starts_with("0x") || t.starts_with("0X")) && !t.contains(['p', 'P'])
}

/// Go's `strconv.ParseUint`/`ParseInt` with base 0 (prefixes, underscores).
fn parse_int(text: &str) -> (Option<i64>, Option<u64>) {
    let (neg, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return (None, None);
    }
    let Ok(mag) = u64::from_str_radix(&digits.replace('_', ""), radix) else {
        return (None, None);
    };
    let int = if neg {
        0i64.checked_sub_unsigned(mag)
    } else {
        i64::try_from(mag).ok()
    };
    let uint = if neg && mag != 0 || text.starts_with('+') {
        None
    } else {
        Some(mag)
    };
    (int, uint)
}

/// Go's `strconv.Unquote` for `"..."` and `` `...` `` literals.
pub(crate) fn unquote(s: &str) -> Option<String> {
    if let Some(raw) = s.strip_prefix('`').and_then(|r| r.strip_suffix('`')) {
        return Some(raw.replace('\r', ""));
    }
    let mut rest = s.strip_prefix('"')?.strip_suffix('"')?;
    let mut bytes = Vec::with_capacity(rest.len());
    while !rest.is_empty() {
        if rest.starts_with('\\') {
            let (v, tail) = unquote_escape(rest, '"')?;
            match v {
                Esc::Char(c) => bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
                Esc::Byte(b) => bytes.push(b),
            }
            rest = tail;
        } else {
            let c = rest.chars().next()?;
            if c == '"' || c == '\n' {
                return None;
            }
            bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
            rest = &rest[c.len_utf8()..];
        }
    }
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

enum Esc {
    Char(char),
    Byte(u8),
}

/// Decodes one (possibly escaped) character; returns it and the rest.
fn unquote_char(s: &str, quote: char) -> Option<(char, &str)> {
    if s.starts_with('\\') {
        let (v, tail) = unquote_escape(s, quote)?;
        let c = match v {
            Esc::Char(c) => c,
            Esc::Byte(b) => char::from(b),
        };
        return Some((c, tail));
    }
    let c = s.chars().next()?;
    if c == quote {
        return None;
    }
    Some((c, &s[c.len_utf8()..]))
}

fn unquote_escape(s: &str, quote: char) -> Option<(Esc, &str)> {
    let mut it = s[1..].chars();
    let c = it.next()?;
    let rest = &s[1 + c.len_utf8()..];
    let simple = |ch: char| Some((Esc::Char(ch), rest));
    match c {
        'a' => simple('\u{7}'),
        'b' => simple('\u{8}'),
        'f' => simple('\u{c}'),
        'n' => simple('\n'),
        'r' => simple('\r'),
        't' => simple('\t'),
        'v' => simple('\u{b}'),
        '\\' => simple('\\'),
        '\'' | '"' if c == quote => simple(c),
        'x' | 'u' | 'U' => {
            let n = match c {
                'x' => 2,
                'u' => 4,
                _ => 8,
            };
            let hex = rest.get(..n)?;
            let v = u32::from_str_radix(hex, 16)
                .ok()
                .filter(|_| hex.bytes().all(|b| b.is_ascii_hexdigit()))?;
            let tail = &rest[n..];
            if c == 'x' {
                return Some((Esc::Byte(u8::try_from(v).ok()?), tail));
            }
            Some((Esc::Char(char::from_u32(v)?), tail))
        }
        '0'..='7' => {
            let oct = s.get(1..4)?;
            let v = u32::from_str_radix(oct, 8)
                .ok()
                .filter(|_| oct.bytes().all(|b| (b'0'..=b'7').contains(&b)))?;
            Some((Esc::Byte(u8::try_from(v).ok()?), &s[4..]))
        }
        _ => None,
    }
}
