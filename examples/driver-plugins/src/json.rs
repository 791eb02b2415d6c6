//! Just enough JSON for the plugin protocol's small, known requests:
//! looking a field up in an object (nested values skipped properly, key
//! case folded as Go's decoder does when there is no exact match),
//! decoding and quoting strings; and a base64 decoder for Go's `[]byte`
//! fields.

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    i
}

/// Where the string literal starting at `b[i]` (a `"`) ends.
fn string_end(b: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    while let Some(&c) = b.get(i) {
        match c {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// Where the value starting at `b[i]` ends.
fn value_end(b: &[u8], i: usize) -> Option<usize> {
    match *b.get(i)? {
        b'"' => string_end(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            while let Some(&c) = b.get(j) {
                match c {
                    b'"' => {
                        j = string_end(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            None
        }
        _ => {
            let mut j = i;
            while b
                .get(j)
                .is_some_and(|c| !matches!(c, b',' | b'}' | b']') && !c.is_ascii_whitespace())
            {
                j += 1;
            }
            (j > i).then_some(j)
        }
    }
}

/// The JSON text of the value of `key` in the object `json`.
pub fn value<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let b = json.as_bytes();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return None;
    }
    let mut folded = None;
    loop {
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let end = string_end(b, i)?;
        let k = unquote(&json[i..end])?;
        i = skip_ws(b, end);
        if b.get(i) != Some(&b':') {
            return None;
        }
        let start = skip_ws(b, i + 1);
        let end = value_end(b, start)?;
        let v = &json[start..end];
        if k == key {
            return Some(v);
        }
        if folded.is_none() && k.eq_ignore_ascii_case(key) {
            folded = Some(v);
        }
        i = skip_ws(b, end);
        match b.get(i) {
            Some(b',') => i = skip_ws(b, i + 1),
            Some(b'}') => return folded,
            _ => return None,
        }
    }
}

/// The string field `key` of the object `json`.
pub fn string(json: &str, key: &str) -> Option<String> {
    unquote(value(json, key)?)
}

/// The object field `key` of the object `json`, as JSON text.
pub fn object<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    value(json, key).filter(|v| v.starts_with('{'))
}

/// The boolean field `key` of the object `json`.
pub fn boolean(json: &str, key: &str) -> Option<bool> {
    match value(json, key)? {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// The integer field `key` of the object `json`.
pub fn integer(json: &str, key: &str) -> Option<i64> {
    value(json, key)?.parse().ok()
}

fn hex4(chars: &mut std::str::Chars<'_>) -> Option<u32> {
    let mut v = 0;
    for _ in 0..4 {
        v = v * 16 + chars.next()?.to_digit(16)?;
    }
    Some(v)
}

/// The text of the JSON string literal `literal` (quotes included).
pub fn unquote(literal: &str) -> Option<String> {
    let mut chars = literal.strip_prefix('"')?.chars();
    let mut out = String::new();
    loop {
        match chars.next()? {
            '"' => return chars.as_str().is_empty().then_some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                'b' => out.push('\u{8}'),
                'f' => out.push('\u{c}'),
                c @ ('"' | '\\' | '/') => out.push(c),
                'u' => {
                    let hi = hex4(&mut chars)?;
                    let mut c = char::from_u32(hi);
                    if (0xD800..0xDC00).contains(&hi) {
                        let mut ahead = chars.clone();
                        if ahead.next() == Some('\\') && ahead.next() == Some('u') {
                            let lo = hex4(&mut ahead).filter(|lo| (0xDC00..0xE000).contains(lo));
                            if let Some(lo) = lo {
                                c = char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00));
                                chars = ahead;
                            }
                        }
                    }
                    out.push(c.unwrap_or('\u{fffd}'));
                }
                _ => return None,
            },
            c => out.push(c),
        }
    }
}

/// `s` as a JSON string literal.
pub fn quote(s: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Decodes standard base64 (`+/`, padding optional), as Go encodes a
/// `[]byte` in JSON.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let data = s.trim_end_matches('=');
    if s.len() - data.len() > 2 {
        return None;
    }
    let mut out = Vec::with_capacity(data.len() / 4 * 3 + 2);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in data.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from(acc >> bits).ok()?);
            acc &= (1 << bits) - 1;
        }
    }
    // One character left over carries no whole byte.
    (bits < 6).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_of_nested_objects() {
        let j = r#" { "Name" : "Name", "Opts": {"Name":"inner","x":[1,{"y":"}"}]},
            "Info":{"ContainerID":"abc","Config":{}}, "N": -12, "V6": true, "Z": null } "#;
        assert_eq!(string(j, "Name").as_deref(), Some("Name"));
        assert_eq!(
            object(j, "Opts"),
            Some(r#"{"Name":"inner","x":[1,{"y":"}"}]}"#)
        );
        assert_eq!(
            string(object(j, "Info").unwrap(), "ContainerID").as_deref(),
            Some("abc")
        );
        assert_eq!(integer(j, "N"), Some(-12));
        assert_eq!(boolean(j, "V6"), Some(true));
        assert_eq!(boolean(j, "Missing"), None);
        assert_eq!(string(j, "Z"), None);
        assert_eq!(value(j, "Z"), Some("null"));
        // Go's decoder folds case when no key matches exactly.
        assert_eq!(
            string(r#"{"RequestUri":"/v1.41/info"}"#, "RequestURI").as_deref(),
            Some("/v1.41/info")
        );
        assert_eq!(value("{}", "a"), None);
        assert_eq!(value("[1]", "a"), None);
    }

    #[test]
    fn strings_round_trip() {
        let s = "a\"b\\c\n\t<é>\u{1}😀";
        assert_eq!(unquote(&quote(s)).as_deref(), Some(s));
        assert_eq!(
            unquote(r#""\u003cb\u003e \ud83d\ude00 \/""#).as_deref(),
            Some("<b> 😀 /")
        );
        assert_eq!(unquote(r#""open"#), None);
        assert_eq!(unquote(r#""a"b""#), None);
    }

    #[test]
    fn base64() {
        for (enc, dec) in [
            ("", ""),
            ("Zg==", "f"),
            ("Zm8=", "fo"),
            ("Zm9v", "foo"),
            ("Zm9vYg==", "foob"),
            ("Zm9vYmE", "fooba"),
            ("Zm9vYmFy", "foobar"),
        ] {
            assert_eq!(base64_decode(enc).as_deref(), Some(dec.as_bytes()), "{enc}");
        }
        assert_eq!(base64_decode("+/+/").unwrap(), [0xfb, 0xff, 0xbf]);
        assert_eq!(base64_decode("Zm9v!"), None);
        assert_eq!(base64_decode("Z"), None);
        assert_eq!(base64_decode("Zg==="), None);
    }
}
