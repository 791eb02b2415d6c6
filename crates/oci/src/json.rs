//! JSON helpers: Go-compatible output and Go-like case-insensitive input.

use serde::Serialize;
use serde_json::ser::{CompactFormatter, Formatter, PrettyFormatter};
use serde_json::{Map, Value};
use std::io;

/// Serialises like Go's `encoding/json`: compact, with `<`, `>`, `&`, U+2028
/// and U+2029 escaped as `\u003c` and so on, which is how Docker writes
/// every JSON document. Same bytes in, same digest out.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, GoEscape(CompactFormatter));
    value
        .serialize(&mut ser)
        .expect("serialising wire types to memory cannot fail");
    out
}

/// Like [`to_vec`], indented with `indent` as Go's `json.MarshalIndent`
/// does (Docker's CLI uses four spaces for `inspect`).
pub fn to_vec_pretty<T: Serialize + ?Sized>(value: &T, indent: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let formatter = GoEscape(PrettyFormatter::with_indent(indent.as_bytes()));
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    value
        .serialize(&mut ser)
        .expect("serialising wire types to memory cannot fail");
    out
}

struct GoEscape<F>(F);

impl<F: Formatter> Formatter for GoEscape<F> {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let esc = match c {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            w.write_all(&fragment.as_bytes()[start..i])?;
            w.write_all(esc.as_bytes())?;
            start = i + c.len_utf8();
        }
        w.write_all(&fragment.as_bytes()[start..])
    }

    // Everything else is delegated to the wrapped formatter.
    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn end_object_key<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_key(w)
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_value(w)
    }
}

/// The shape of a JSON object whose keys Go would match case-insensitively:
/// each canonical key, and the shape of its value.
pub(crate) type Shape = &'static [(&'static str, Child)];

/// What a key's value holds.
#[derive(Clone, Copy)]
pub(crate) enum Child {
    /// A scalar, or a value whose keys are not folded.
    Leaf,
    /// A Go slice or pointer: a `null` resets it to nil (`None`).
    Nullable,
    /// An object of the given shape.
    Object(Shape),
    /// An array of objects of the given shape.
    Array(Shape),
}

/// Renames every key of `value` to its canonical spelling the way Go's
/// `encoding/json` matches struct fields (ASCII case-insensitively), drops
/// keys the shape does not know (Go ignores them) and `null` values (the
/// field keeps its zero or earlier value), and lets a later duplicate win, as Go does.
pub(crate) fn fold_keys(value: Value, shape: Shape) -> Value {
    let Value::Object(map) = value else {
        return value;
    };
    let mut out = Map::with_capacity(map.len());
    for (key, v) in map {
        let Some((canonical, child)) = shape.iter().find(|(k, _)| k.eq_ignore_ascii_case(&key))
        else {
            continue;
        };
        let v = match (child, v) {
            // Go: a null resets a slice or pointer, and leaves anything else as
            // it was.
            (Child::Nullable | Child::Array(_), Value::Null) => {
                out.shift_remove(*canonical);
                continue;
            }
            (_, Value::Null) => continue,
            (Child::Object(inner), v) => fold_keys(v, inner),
            (Child::Array(inner), Value::Array(items)) => {
                Value::Array(items.into_iter().map(|i| fold_keys(i, inner)).collect())
            }
            (_, v) => v,
        };
        out.insert((*canonical).to_owned(), v);
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_escapes_html_characters() {
        let v = serde_json::json!({"a": "<b> & \u{2028} é \"q\""});
        assert_eq!(
            String::from_utf8(to_vec(&v)).unwrap(),
            r#"{"a":"\u003cb\u003e \u0026 \u2028 é \"q\""}"#
        );
    }

    #[test]
    fn folding_is_case_insensitive_and_last_wins() {
        const INNER: Shape = &[("Type", Child::Leaf)];
        const LISTS: Shape = &[("Caps", Child::Nullable), ("List", Child::Array(INNER))];
        const OUTER: Shape = &[
            ("Name", Child::Leaf),
            ("Network", Child::Object(INNER)),
            ("List", Child::Array(INNER)),
        ];
        let v: Value = serde_json::from_str(
            r#"{"name":"a","NAME":"b","network":{"TYPE":"host","x":1},"list":[{"type":"t"}],"unknown":3}"#,
        )
        .unwrap();
        assert_eq!(
            fold_keys(v, OUTER).to_string(),
            r#"{"Name":"b","Network":{"Type":"host"},"List":[{"Type":"t"}]}"#
        );
        let v: Value = serde_json::from_str(r#"{"Name":"a","name":null}"#).unwrap();
        assert_eq!(fold_keys(v, OUTER).to_string(), r#"{"Name":"a"}"#);
        // A null resets a slice, as Go sets it to nil.
        let v: Value =
            serde_json::from_str(r#"{"Caps":["A"],"caps":null,"List":[{}],"list":null}"#).unwrap();
        assert_eq!(fold_keys(v, LISTS).to_string(), "{}");
    }
}
