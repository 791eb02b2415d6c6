//! Float formatting as Go's `strconv.FormatFloat` (`%e`, `%f`, `%g`, shortest
//! forms) and `encoding/json`, built on Rust's exact float-to-decimal output.

use std::fmt::Write as _;

/// Decimal digits (no trailing zeros) and decimal point position of a float:
/// the value is `0.d1d2d3… × 10^dp`; zero has no digits.
struct Digits {
    d: Vec<u8>,
    dp: i32,
}

/// Parses Rust's `{:e}` output into [`Digits`].
fn digits_of(e: &str) -> Digits {
    let (mant, exp) = e.split_once('e').unwrap_or((e, "0"));
    let mut d: Vec<u8> = mant.bytes().filter(u8::is_ascii_digit).collect();
    while d.last() == Some(&b'0') {
        d.pop();
    }
    if d.is_empty() {
        return Digits { d, dp: 0 };
    }
    Digits {
        d,
        dp: exp.parse::<i32>().unwrap_or(0) + 1,
    }
}

fn nd(d: &Digits) -> usize {
    d.d.len()
}

/// `%e` body from digits: `d.ddde±XX`.
fn fmt_e(dg: &Digits, prec: usize, upper: bool) -> String {
    let mut s = String::new();
    s.push(dg.d.first().map_or('0', |&c| char::from(c)));
    if prec > 0 {
        s.push('.');
        for i in 1..=prec {
            s.push(dg.d.get(i).map_or('0', |&c| char::from(c)));
        }
    }
    s.push(if upper { 'E' } else { 'e' });
    let exp = if dg.d.is_empty() { 0 } else { dg.dp - 1 };
    s.push(if exp < 0 { '-' } else { '+' });
    let _ = write!(s, "{:02}", exp.unsigned_abs());
    s
}

/// `%f` body from digits.
fn fmt_f(dg: &Digits, prec: usize) -> String {
    let mut s = String::new();
    let digit = |j: i64| {
        usize::try_from(j)
            .ok()
            .and_then(|j| dg.d.get(j))
            .map_or('0', |&c| char::from(c))
    };
    if dg.dp > 0 {
        for j in 0..dg.dp {
            s.push(digit(i64::from(j)));
        }
    } else {
        s.push('0');
    }
    if prec > 0 {
        s.push('.');
        for i in 1..=prec {
            s.push(digit(i64::from(dg.dp) + i64::try_from(i).unwrap_or(0) - 1));
        }
    }
    s
}

/// Go's `strconv.FormatFloat(v, verb, prec)` for `v >= 0` (`None` = shortest).
pub(crate) fn format_float(v: f64, verb: char, prec: Option<usize>) -> String {
    let upper = verb.is_ascii_uppercase();
    let shortest = || digits_of(&format!("{v:e}"));
    match (verb.to_ascii_lowercase(), prec) {
        ('e', Some(p)) => fmt_e(&digits_of(&format!("{v:.p$e}")), p, upper),
        ('e', None) => {
            let d = shortest();
            fmt_e(&d, nd(&d).saturating_sub(1), upper)
        }
        ('f', Some(p)) => format!("{v:.p$}"),
        ('f', None) => {
            let d = shortest();
            let p =
                usize::try_from(i64::try_from(nd(&d)).unwrap_or(0) - i64::from(d.dp)).unwrap_or(0);
            fmt_f(&d, p)
        }
        (_, p) => {
            let (d, mut prec, eprec) = match p {
                None => {
                    let d = shortest();
                    let n = nd(&d);
                    (d, n, 6)
                }
                Some(p) => {
                    let p = p.max(1);
                    let d = digits_of(&format!("{v:.*e}", p - 1));
                    let n = nd(&d);
                    let dp_pos = usize::try_from(d.dp).ok();
                    let eprec = if p > n && dp_pos.is_some_and(|dp| n >= dp) {
                        n
                    } else {
                        p
                    };
                    (d, p, eprec)
                }
            };
            let exp = d.dp - 1;
            if exp < -4 || i64::from(exp) >= i64::try_from(eprec).unwrap_or(i64::MAX) {
                prec = prec.min(nd(&d));
                return fmt_e(&d, prec.saturating_sub(1), upper);
            }
            if i64::try_from(prec).unwrap_or(0) > i64::from(d.dp) {
                prec = nd(&d);
            }
            let fp = i64::try_from(prec).unwrap_or(0) - i64::from(d.dp);
            fmt_f(&d, usize::try_from(fp).unwrap_or(0))
        }
    }
}

/// Go's `encoding/json` float64 encoding.
pub(crate) fn json_float(f: f64) -> String {
    let abs = f.abs();
    let d = digits_of(&format!("{abs:e}"));
    let mut s = if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let e = fmt_e(&d, nd(&d).saturating_sub(1), false);
        match e.find("e-0") {
            Some(i) if e.len() == i + 4 => format!("{}e-{}", &e[..i], &e[i + 3..]),
            _ => e,
        }
    } else {
        let p = usize::try_from(i64::try_from(nd(&d)).unwrap_or(0) - i64::from(d.dp)).unwrap_or(0);
        fmt_f(&d, p)
    };
    if f.is_sign_negative() && abs != 0.0 {
        s.insert(0, '-');
    }
    s
}
