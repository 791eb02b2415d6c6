//! Go's `fmt` formatting (`%v` and the `printf` verbs) over JSON values.
//!
//! Objects format like Go structs (`{v1 v2}`, `%+v` gives `{k1:v1 k2:v2}`),
//! because Docker runs `--format` templates against typed structs.

use std::fmt::Write as _;

use serde_json::Value;

use super::float::format_float;

/// Formats `v` as Go's `%v` (what an action prints).
pub(crate) fn format_value(v: &Value) -> String {
    let mut p = Printer::default();
    p.print_arg(v, 'v', 0);
    p.buf
}

/// Go's `fmt.Sprint`: a space between operands when neither is a string.
pub(crate) fn sprint(args: &[Value]) -> String {
    let mut p = Printer::default();
    let mut prev_string = false;
    for (i, a) in args.iter().enumerate() {
        let is_string = a.is_string();
        if i > 0 && !is_string && !prev_string {
            p.buf.push(' ');
        }
        p.print_arg(a, 'v', 0);
        prev_string = is_string;
    }
    p.buf
}

/// Go's `fmt.Sprintln`: operands separated by spaces, newline appended.
pub(crate) fn sprintln(args: &[Value]) -> String {
    let mut p = Printer::default();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            p.buf.push(' ');
        }
        p.print_arg(a, 'v', 0);
    }
    p.buf.push('\n');
    p.buf
}

/// The Go type name of a decoded JSON value, for error messages.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "interface {}",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// Approximates Go's `strconv.IsPrint` (letters, marks, numbers, punctuation,
/// symbols and the ASCII space).
pub(crate) fn is_print(c: char) -> bool {
    if c.is_ascii() {
        return (' '..='~').contains(&c);
    }
    !(c.is_control()
        || c.is_whitespace()
        || matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{206f}')
        || matches!(c, '\u{feff}' | '\u{fff9}'..='\u{fffb}' | '\u{e000}'..='\u{f8ff}'))
}

/// Go's `strconv.Quote` (`q` = `"`) / `QuoteRune` (`q` = `'`), optionally ASCII-only.
pub(crate) fn quote(s: &str, q: char, ascii: bool) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push(q);
    for c in s.chars() {
        match c {
            c if c == q || c == '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if (!ascii || c.is_ascii()) && is_print(c) => out.push(c),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if c < ' ' || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if u32::from(c) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => {
                let _ = write!(out, "\\U{:08x}", u32::from(c));
            }
        }
    }
    out.push(q);
    out
}

/// Go's `fmt` flags, one bool each as in Go.
#[allow(clippy::struct_excessive_bools)]
#[derive(Default, Clone, Copy)]
struct Flags {
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    plus_v: bool,
    sharp_v: bool,
    wid: Option<usize>,
    prec: Option<usize>,
}

#[derive(Default)]
struct Printer {
    buf: String,
    f: Flags,
}

/// Go's `fmt.Sprintf` over JSON values.
pub(crate) fn sprintf(format: &str, args: &[Value]) -> String {
    let mut pr = Printer::default();
    let mut sc = Scan {
        format,
        i: 0,
        arg_num: 0,
        reordered: false,
        good: true,
        args,
    };
    while sc.i < format.len() {
        let last = sc.i;
        sc.i = format[last..].find('%').map_or(format.len(), |x| last + x);
        pr.buf.push_str(&format[last..sc.i]);
        if sc.i >= format.len() {
            break;
        }
        sc.i += 1;
        pr.f = sc.flags();
        sc.good = true;
        let mut after_index = sc.arg_number();
        if sc.at(b'*') {
            pr.f.wid = sc.star_arg();
            if pr.f.wid.is_none() {
                pr.buf.push_str("%!(BADWIDTH)");
            } else if sc.negative_star() {
                pr.f.minus = true;
                pr.f.zero = false;
            }
            after_index = false;
        } else {
            pr.f.wid = sc.num();
            if after_index && pr.f.wid.is_some() {
                sc.good = false;
            }
        }
        if sc.i + 1 < format.len() && sc.at(b'.') {
            sc.i += 1;
            if after_index {
                sc.good = false;
            }
            after_index = sc.arg_number();
            if sc.at(b'*') {
                pr.f.prec = sc.star_arg().filter(|_| !sc.negative_star());
                if pr.f.prec.is_none() {
                    pr.buf.push_str("%!(BADPREC)");
                }
                after_index = false;
            } else {
                pr.f.prec = Some(sc.num().unwrap_or(0));
            }
        }
        if !after_index {
            sc.arg_number();
        }
        let Some(verb) = format[sc.i..].chars().next() else {
            pr.buf.push_str("%!(NOVERB)");
            break;
        };
        sc.i += verb.len_utf8();
        pr.verb(verb, &mut sc);
    }
    if !sc.reordered && sc.arg_num < args.len() {
        pr.extra(&args[sc.arg_num..]);
    }
    pr.buf
}

/// Scanning state of a format string (Go's `doPrintf` locals).
struct Scan<'a> {
    format: &'a str,
    i: usize,
    arg_num: usize,
    reordered: bool,
    good: bool,
    args: &'a [Value],
}

impl Scan<'_> {
    fn at(&self, c: u8) -> bool {
        self.format.as_bytes().get(self.i) == Some(&c)
    }

    fn flags(&mut self) -> Flags {
        let mut f = Flags::default();
        while let Some(&c) = self.format.as_bytes().get(self.i) {
            match c {
                b'#' => f.sharp = true,
                b'0' => f.zero = !f.minus,
                b'+' => f.plus = true,
                b'-' => {
                    f.minus = true;
                    f.zero = false;
                }
                b' ' => f.space = true,
                _ => break,
            }
            self.i += 1;
        }
        f
    }

    /// A decimal number at the cursor; `None` when there are no digits.
    fn num(&mut self) -> Option<usize> {
        let bytes = self.format.as_bytes();
        let start = self.i;
        let mut n: usize = 0;
        while let Some(d) = bytes.get(self.i).filter(|d| d.is_ascii_digit()) {
            if n > 1_000_000 {
                self.i = bytes.len();
                return None;
            }
            n = n * 10 + usize::from(d - b'0');
            self.i += 1;
        }
        (self.i > start).then_some(n)
    }

    /// Go's `argNumber`: an explicit `[n]` argument index; true if one was found.
    fn arg_number(&mut self) -> bool {
        if !self.at(b'[') {
            return false;
        }
        self.reordered = true;
        if self.format.len() - self.i < 3 {
            self.good = false;
            self.i += 1;
            return false;
        }
        let Some(close) = self.format[self.i..].find(']').map(|x| self.i + x) else {
            self.good = false;
            self.i += 1;
            return false;
        };
        self.i += 1;
        let n = self.num();
        let well_formed = self.i == close && n.is_some();
        self.i = close + 1;
        match n {
            Some(n) if well_formed && n >= 1 && n - 1 < self.args.len() => {
                self.arg_num = n - 1;
            }
            _ => self.good = false,
        }
        well_formed
    }

    /// Go's `intFromArg` for a `*` width or precision (the `*` is at the cursor).
    fn star_arg(&mut self) -> Option<usize> {
        self.i += 1;
        let arg = self.args.get(self.arg_num)?;
        self.arg_num += 1;
        let v = arg.as_i64().filter(|v| v.abs() <= 1_000_000)?;
        usize::try_from(v.unsigned_abs()).ok()
    }

    /// Whether the argument just taken by [`Scan::star_arg`] was negative.
    fn negative_star(&self) -> bool {
        self.arg_num
            .checked_sub(1)
            .and_then(|k| self.args.get(k))
            .and_then(Value::as_i64)
            .is_some_and(|v| v < 0)
    }
}

impl Printer {
    /// Formats one verb with the next argument.
    fn verb(&mut self, verb: char, sc: &mut Scan<'_>) {
        if verb == '%' {
            self.buf.push('%');
        } else if !sc.good {
            let _ = write!(self.buf, "%!{verb}(BADINDEX)");
        } else if let Some(arg) = sc.args.get(sc.arg_num) {
            if verb == 'v' {
                self.f.plus_v = self.f.plus;
                self.f.sharp_v = self.f.sharp;
                self.f.plus = false;
                self.f.sharp = false;
            }
            self.print_arg(arg, verb, 0);
            sc.arg_num += 1;
        } else {
            let _ = write!(self.buf, "%!{verb}(MISSING)");
        }
    }

    /// Go's `%!(EXTRA type=value, ...)` for unused arguments.
    fn extra(&mut self, rest: &[Value]) {
        self.f = Flags::default();
        self.buf.push_str("%!(EXTRA ");
        for (k, a) in rest.iter().enumerate() {
            if k > 0 {
                self.buf.push_str(", ");
            }
            if a.is_null() {
                self.buf.push_str("<nil>");
            } else {
                self.buf.push_str(type_name(a));
                self.buf.push('=');
                self.print_arg(a, 'v', 0);
            }
        }
        self.buf.push(')');
    }

    fn write_padding(&mut self, n: usize) {
        let c = if self.f.zero { '0' } else { ' ' };
        self.buf.extend(std::iter::repeat_n(c, n));
    }

    /// Pads `s` to the width (counted in chars).
    fn pad(&mut self, s: &str) {
        let n = s.chars().count();
        let fill = self.f.wid.unwrap_or(0).saturating_sub(n);
        if self.f.minus {
            self.buf.push_str(s);
            self.write_padding(fill);
        } else {
            self.write_padding(fill);
            self.buf.push_str(s);
        }
    }

    fn pad_no_zero(&mut self, s: &str) {
        let old = self.f.zero;
        self.f.zero = false;
        self.pad(s);
        self.f.zero = old;
    }

    fn bad_verb(&mut self, verb: char, v: &Value) {
        self.buf.push_str("%!");
        self.buf.push(verb);
        self.buf.push('(');
        if v.is_null() {
            self.buf.push_str("<nil>");
        } else {
            self.buf.push_str(type_name(v));
            self.buf.push('=');
            self.print_arg(v, 'v', 0);
        }
        self.buf.push(')');
    }

    fn print_arg(&mut self, v: &Value, verb: char, depth: usize) {
        if verb == 'T' && depth == 0 {
            if v.is_null() {
                self.pad("<nil>");
            } else {
                self.fmt_s(type_name(v));
            }
            return;
        }
        match v {
            Value::Null if depth > 0 => {
                self.buf.push_str(if self.f.sharp_v {
                    "interface {}(nil)"
                } else {
                    "<nil>"
                });
            }
            Value::Null if verb == 'v' => self.pad("<nil>"),
            Value::Bool(b) if matches!(verb, 't' | 'v') => {
                self.pad(if *b { "true" } else { "false" });
            }
            Value::Null | Value::Bool(_) => self.bad_verb(verb, v),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    self.fmt_int(i128::from(i), verb, v);
                } else if let Some(u) = n.as_u64() {
                    self.fmt_int(i128::from(u), verb, v);
                } else {
                    self.fmt_float(n.as_f64().unwrap_or_default(), verb, v);
                }
            }
            Value::String(s) => self.fmt_string(s, verb, v),
            Value::Array(_) | Value::Object(_) if self.f.sharp_v => self.go_syntax(v, verb, depth),
            Value::Array(a) => {
                self.buf.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        self.buf.push(' ');
                    }
                    self.print_arg(x, verb, depth + 1);
                }
                self.buf.push(']');
            }
            Value::Object(o) => {
                self.buf.push('{');
                for (i, (k, x)) in o.iter().enumerate() {
                    if i > 0 {
                        self.buf.push(' ');
                    }
                    if self.f.plus_v {
                        self.buf.push_str(k);
                        self.buf.push(':');
                    }
                    self.print_arg(x, verb, depth + 1);
                }
                self.buf.push('}');
            }
        }
    }

    /// `%#v` of an array or object: Go syntax for `[]interface {}` and
    /// `map[string]interface {}` (sorted keys, as Go prints maps).
    fn go_syntax(&mut self, v: &Value, verb: char, depth: usize) {
        let items: Vec<(Option<&String>, &Value)> = match v {
            Value::Array(a) => {
                self.buf.push_str("[]interface {}{");
                a.iter().map(|x| (None, x)).collect()
            }
            Value::Object(o) => {
                self.buf.push_str("map[string]interface {}{");
                let mut kv: Vec<_> = o.iter().map(|(k, x)| (Some(k), x)).collect();
                kv.sort_by_key(|(k, _)| *k);
                kv
            }
            _ => Vec::new(),
        };
        for (i, (k, x)) in items.into_iter().enumerate() {
            if i > 0 {
                self.buf.push_str(", ");
            }
            if let Some(k) = k {
                self.fmt_string(k, verb, x);
                self.buf.push(':');
            }
            self.print_arg(x, verb, depth + 1);
        }
        self.buf.push('}');
    }

    fn fmt_s(&mut self, s: &str) {
        match self.f.prec {
            Some(p) => {
                let t: String = s.chars().take(p).collect();
                self.pad(&t);
            }
            None => self.pad(s),
        }
    }

    fn fmt_string(&mut self, s: &str, verb: char, v: &Value) {
        match verb {
            'v' | 's' if !(verb == 'v' && self.f.sharp_v) => self.fmt_s(s),
            'v' | 'q' => {
                let t: String = s.chars().take(self.f.prec.unwrap_or(usize::MAX)).collect();
                let can_backquote =
                    !t.contains('`') && t.chars().all(|c| c == '\t' || !c.is_control());
                let q = if self.f.sharp && can_backquote {
                    format!("`{t}`")
                } else {
                    quote(&t, '"', self.f.plus)
                };
                self.pad(&q);
            }
            'x' | 'X' => self.fmt_sx(s.as_bytes(), verb == 'X'),
            _ => self.bad_verb(verb, v),
        }
    }

    fn fmt_sx(&mut self, b: &[u8], upper: bool) {
        let digits: &[u8] = if upper {
            b"0123456789ABCDEFX"
        } else {
            b"0123456789abcdefx"
        };
        let len = self.f.prec.map_or(b.len(), |p| p.min(b.len()));
        let mut width = 2 * len;
        if width == 0 {
            self.write_padding(self.f.wid.unwrap_or(0));
            return;
        }
        if self.f.space {
            if self.f.sharp {
                width *= 2;
            }
            width += len - 1;
        } else if self.f.sharp {
            width += 2;
        }
        let fill = self.f.wid.unwrap_or(0).saturating_sub(width);
        if !self.f.minus {
            self.write_padding(fill);
        }
        let prefix = ['0', char::from(digits[16])];
        if self.f.sharp {
            self.buf.extend(prefix);
        }
        for (i, c) in b[..len].iter().enumerate() {
            if self.f.space && i > 0 {
                self.buf.push(' ');
                if self.f.sharp {
                    self.buf.extend(prefix);
                }
            }
            self.buf.push(char::from(digits[usize::from(c >> 4)]));
            self.buf.push(char::from(digits[usize::from(c & 0xf)]));
        }
        if self.f.minus {
            self.write_padding(fill);
        }
    }

    fn fmt_int(&mut self, v: i128, verb: char, orig: &Value) {
        match verb {
            'v' | 'd' => self.fmt_integer(v, 10, verb, false),
            'b' => self.fmt_integer(v, 2, verb, false),
            'o' | 'O' => self.fmt_integer(v, 8, verb, false),
            'x' => self.fmt_integer(v, 16, verb, false),
            'X' => self.fmt_integer(v, 16, verb, true),
            'c' | 'q' => {
                let c = u32::try_from(v)
                    .ok()
                    .and_then(char::from_u32)
                    .unwrap_or('\u{fffd}');
                let s = if verb == 'c' {
                    c.to_string()
                } else {
                    quote(&c.to_string(), '\'', self.f.plus)
                };
                self.pad(&s);
            }
            'U' => {
                let digits = self.f.prec.filter(|&p| p > 4).unwrap_or(4);
                // Go formats the code point as a uint64 (two's complement).
                let u = u64::try_from(v)
                    .unwrap_or_else(|_| i64::try_from(v).map_or(0, i64::cast_unsigned));
                let mut s = format!("U+{u:0digits$X}");
                if let Some(c) = u32::try_from(u)
                    .ok()
                    .and_then(char::from_u32)
                    .filter(|&c| self.f.sharp && is_print(c))
                {
                    let _ = write!(s, " '{c}'");
                }
                self.pad_no_zero(&s);
            }
            _ => self.bad_verb(verb, orig),
        }
    }

    /// Port of Go's `fmt.fmtInteger`.
    fn fmt_integer(&mut self, v: i128, base: u32, verb: char, upper: bool) {
        let neg = v < 0;
        let u = v.unsigned_abs();
        let mut prec = 0;
        if let Some(p) = self.f.prec {
            prec = p;
            if p == 0 && u == 0 {
                let old = self.f.zero;
                self.f.zero = false;
                self.write_padding(self.f.wid.unwrap_or(0));
                self.f.zero = old;
                return;
            }
        } else if let (true, Some(w)) = (self.f.zero, self.f.wid) {
            prec = w;
            if neg || self.f.plus || self.f.space {
                prec = prec.saturating_sub(1);
            }
        }
        let mut digits = match base {
            2 => format!("{u:b}"),
            8 => format!("{u:o}"),
            16 if upper => format!("{u:X}"),
            16 => format!("{u:x}"),
            _ => u.to_string(),
        };
        if digits.len() < prec {
            digits.insert_str(0, &"0".repeat(prec - digits.len()));
        }
        let mut s = String::new();
        if neg {
            s.push('-');
        } else if self.f.plus {
            s.push('+');
        } else if self.f.space {
            s.push(' ');
        }
        if verb == 'O' {
            s.push_str("0o");
        }
        if self.f.sharp {
            match base {
                2 => s.push_str("0b"),
                8 if !digits.starts_with('0') => s.push('0'),
                16 => s.push_str(if upper { "0X" } else { "0x" }),
                _ => {}
            }
        }
        s.push_str(&digits);
        self.pad_no_zero(&s);
    }

    /// Go's `#` for floats: always a decimal point, and `%g` keeps its
    /// trailing zeros up to the precision (6 by default).
    fn sharp_float(&self, body: &str, verb: char) -> String {
        let mut digits = if matches!(verb, 'g' | 'G') {
            self.f
                .prec
                .map_or(6, |p| i64::try_from(p).unwrap_or(i64::MAX))
        } else {
            0
        };
        let (mut num, tail) = match body.find(['e', 'E']) {
            Some(i) => (body[..i].to_string(), &body[i..]),
            None => (body.to_string(), ""),
        };
        let mut saw_nonzero = false;
        for c in num.chars().filter(|&c| c != '.') {
            saw_nonzero |= c != '0';
            if saw_nonzero {
                digits -= 1;
            }
        }
        if !num.contains('.') {
            if num == "0" {
                digits -= 1;
            }
            num.push('.');
        }
        while digits > 0 {
            num.push('0');
            digits -= 1;
        }
        num + tail
    }

    /// Port of Go's `fmt.fmtFloat` (without the hex and binary forms).
    fn fmt_float(&mut self, v: f64, verb: char, orig: &Value) {
        let (verb, default_prec) = match verb {
            'v' => ('g', None),
            'g' | 'G' => (verb, None),
            'e' | 'E' | 'f' | 'F' => (verb, Some(6)),
            _ => return self.bad_verb(verb, orig),
        };
        let mut body = format_float(v.abs(), verb, self.f.prec.or(default_prec));
        if self.f.sharp {
            body = self.sharp_float(&body, verb);
        }
        let sign = if v.is_sign_negative() {
            '-'
        } else if self.f.space && !self.f.plus {
            ' '
        } else {
            '+'
        };
        if self.f.plus || sign != '+' {
            let total = body.len() + 1;
            if let (true, Some(w)) = (self.f.zero, self.f.wid)
                && w > total
            {
                self.buf.push(sign);
                self.write_padding(w - total);
                self.buf.push_str(&body);
                return;
            }
            self.pad(&format!("{sign}{body}"));
            return;
        }
        self.pad(&body);
    }
}
