//! Template functions: Go's builtins and the Docker CLI's `--format` helpers.

use serde_json::Value;

use super::printf;
use super::strfuncs::{
    eval_args, html_escape, join, js_escape, map_chars, pad, query_escape, split, title, to_json,
    truncate,
};

/// A template function known at parse time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Func {
    And,
    Or,
    Not,
    Len,
    Index,
    Slice,
    Print,
    Printf,
    Println,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Json,
    Split,
    Join,
    Title,
    Lower,
    Upper,
    Pad,
    Truncate,
    Html,
    Js,
    Urlquery,
}

/// The Go parameter type an argument is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Param {
    /// `reflect.Value` (builtins): anything but a `nil` literal.
    Value,
    /// `interface{}`: anything.
    Any,
    /// `string`
    Str,
    /// `int`
    Int,
    /// `[]string`
    List,
}

impl Param {
    /// The Go type name used in error messages.
    pub(crate) fn type_name(self) -> &'static str {
        match self {
            Param::Value => "reflect.Value",
            Param::Any => "interface {}",
            Param::Str => "string",
            Param::Int => "int",
            Param::List => "[]string",
        }
    }
}

const ALL: [(&str, Func); 26] = [
    ("and", Func::And),
    ("or", Func::Or),
    ("not", Func::Not),
    ("len", Func::Len),
    ("index", Func::Index),
    ("slice", Func::Slice),
    ("print", Func::Print),
    ("printf", Func::Printf),
    ("println", Func::Println),
    ("eq", Func::Eq),
    ("ne", Func::Ne),
    ("lt", Func::Lt),
    ("le", Func::Le),
    ("gt", Func::Gt),
    ("ge", Func::Ge),
    ("json", Func::Json),
    ("split", Func::Split),
    ("join", Func::Join),
    ("title", Func::Title),
    ("lower", Func::Lower),
    ("upper", Func::Upper),
    ("pad", Func::Pad),
    ("truncate", Func::Truncate),
    ("html", Func::Html),
    ("js", Func::Js),
    ("urlquery", Func::Urlquery),
];

impl Func {
    /// Finds a function by its template name.
    pub(crate) fn lookup(name: &str) -> Option<Func> {
        ALL.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }

    /// The template name.
    pub(crate) fn name(self) -> &'static str {
        ALL.iter().find(|(_, f)| *f == self).map_or("?", |(n, _)| n)
    }

    /// Fixed parameters and the variadic parameter, if any.
    pub(crate) fn signature(self, header: bool) -> (&'static [Param], Option<Param>) {
        use Param::{Any, Int, List, Str, Value};
        if header && self.is_docker() {
            // Docker's header functions return their first argument as is.
            let n = match self {
                Func::Split | Func::Join | Func::Truncate => 2,
                Func::Pad => 3,
                _ => 1,
            };
            return (&[Any, Any, Any][..n], None);
        }
        match self {
            Func::And | Func::Or | Func::Index | Func::Slice | Func::Eq => (&[Value], Some(Value)),
            Func::Not | Func::Len => (&[Value], None),
            Func::Ne | Func::Lt | Func::Le | Func::Gt | Func::Ge => (&[Value, Value], None),
            Func::Print | Func::Println | Func::Html | Func::Js | Func::Urlquery => {
                (&[], Some(Any))
            }
            Func::Printf => (&[Str], Some(Any)),
            Func::Json => (&[Any], None),
            Func::Split => (&[Str, Str], None),
            Func::Join => (&[List, Str], None),
            Func::Title | Func::Lower | Func::Upper => (&[Str], None),
            Func::Pad => (&[Str, Int, Int], None),
            Func::Truncate => (&[Str, Int], None),
        }
    }

    fn is_docker(self) -> bool {
        matches!(
            self,
            Func::Json
                | Func::Split
                | Func::Join
                | Func::Title
                | Func::Lower
                | Func::Upper
                | Func::Pad
                | Func::Truncate
        )
    }

    /// Calls the function on evaluated, type-checked arguments. `and`/`or` are
    /// evaluated by the executor (they short-circuit). The error text is what
    /// follows `error calling NAME: `.
    pub(crate) fn call(self, mut args: Vec<Value>, header: bool) -> Result<Value, String> {
        if args.len() < self.signature(header).0.len() {
            return Err(format!("wrong number of args for {}", self.name()));
        }
        if header && self.is_docker() {
            return Ok(args.swap_remove(0));
        }
        let s = |i: usize| args.get(i).and_then(Value::as_str).unwrap_or_default();
        let n = |i: usize| args.get(i).and_then(Value::as_i64).unwrap_or_default();
        Ok(match self {
            Func::And | Func::Or => args.pop().unwrap_or(Value::Null),
            Func::Not => Value::Bool(!truth(&args[0])),
            Func::Len => Value::from(length(&args[0])?),
            Func::Index => index(&args[0], &args[1..])?,
            Func::Slice => slice(&args[0], &args[1..])?,
            Func::Print => Value::String(printf::sprint(&args)),
            Func::Println => Value::String(printf::sprintln(&args)),
            Func::Printf => Value::String(printf::sprintf(s(0), &args[1..])),
            Func::Eq => Value::Bool(eq(&args[0], &args[1..])?),
            Func::Ne => Value::Bool(!eq(&args[0], &args[1..])?),
            Func::Lt => Value::Bool(lt(&args[0], &args[1])?),
            Func::Le => Value::Bool(lt(&args[0], &args[1])? || eq(&args[0], &args[1..])?),
            Func::Gt => Value::Bool(!(lt(&args[0], &args[1])? || eq(&args[0], &args[1..])?)),
            Func::Ge => Value::Bool(!lt(&args[0], &args[1])?),
            Func::Json => Value::String(to_json(&args[0])),
            Func::Split => split(s(0), s(1)),
            Func::Join => Value::String(join(&args[0], s(1))),
            Func::Title => Value::String(title(s(0))),
            Func::Lower => Value::String(map_chars(s(0), char::to_lowercase)),
            Func::Upper => Value::String(map_chars(s(0), char::to_uppercase)),
            Func::Pad => Value::String(pad(s(0), n(1), n(2))?),
            Func::Truncate => Value::String(truncate(s(0), n(1))?),
            Func::Html => Value::String(html_escape(&eval_args(&args))),
            Func::Js => Value::String(js_escape(&eval_args(&args))),
            Func::Urlquery => Value::String(query_escape(&eval_args(&args))),
        })
    }
}

/// Go's truth: false, 0, "", null, empty array and empty object are false.
pub(crate) fn truth(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

fn length(v: &Value) -> Result<usize, String> {
    match v {
        Value::String(s) => Ok(s.len()),
        Value::Array(a) => Ok(a.len()),
        Value::Object(o) => Ok(o.len()),
        Value::Null => Err("len of nil pointer".into()),
        other => Err(format!("len of type {}", printf::type_name(other))),
    }
}

/// Go's `indexArg`: an integer index in `0..=cap`.
fn index_arg(v: &Value, cap: usize) -> Result<usize, String> {
    let x = match v {
        Value::Number(n) if n.is_i64() || n.is_u64() => n.as_i64().unwrap_or(i64::MAX),
        Value::Null => return Err("cannot index slice/array with nil".into()),
        other => {
            return Err(format!(
                "cannot index slice/array with type {}",
                printf::type_name(other)
            ));
        }
    };
    match usize::try_from(x) {
        Ok(i) if i <= cap => Ok(i),
        _ => Err(format!("index out of range: {x}")),
    }
}

fn index(item: &Value, indexes: &[Value]) -> Result<Value, String> {
    if item.is_null() {
        return Err("index of untyped nil".into());
    }
    let mut cur = item.clone();
    for ix in indexes {
        cur = match &cur {
            Value::Null => return Err("index of nil pointer".into()),
            Value::Array(a) => {
                let i = index_arg(ix, a.len())?;
                a.get(i)
                    .cloned()
                    .ok_or("reflect: slice index out of range")?
            }
            Value::String(s) => {
                let i = index_arg(ix, s.len())?;
                Value::from(
                    *s.as_bytes()
                        .get(i)
                        .ok_or("reflect: string index out of range")?,
                )
            }
            Value::Object(o) => match ix {
                Value::String(k) => o.get(k).cloned().unwrap_or(Value::Null),
                Value::Null => return Err("value is nil; should be of type string".into()),
                other => {
                    return Err(format!(
                        "value has type {}; should be string",
                        printf::type_name(other)
                    ));
                }
            },
            other => {
                return Err(format!(
                    "can't index item of type {}",
                    printf::type_name(other)
                ));
            }
        };
    }
    Ok(cur)
}

fn slice(item: &Value, indexes: &[Value]) -> Result<Value, String> {
    if indexes.len() > 3 {
        return Err(format!("too many slice indexes: {}", indexes.len()));
    }
    let len = match item {
        Value::Null => return Err("slice of untyped nil".into()),
        Value::String(_) if indexes.len() == 3 => {
            return Err("cannot 3-index slice a string".into());
        }
        Value::String(s) => s.len(),
        Value::Array(a) => a.len(),
        other => {
            return Err(format!(
                "can't slice item of type {}",
                printf::type_name(other)
            ));
        }
    };
    let mut idx = [0, len, len];
    for (i, v) in indexes.iter().enumerate() {
        idx[i] = index_arg(v, len)?;
    }
    if idx[0] > idx[1] {
        return Err(format!("invalid slice index: {} > {}", idx[0], idx[1]));
    }
    if indexes.len() == 3 && idx[1] > idx[2] {
        return Err(format!("invalid slice index: {} > {}", idx[1], idx[2]));
    }
    Ok(match item {
        Value::String(s) => {
            Value::String(String::from_utf8_lossy(&s.as_bytes()[idx[0]..idx[1]]).into_owned())
        }
        Value::Array(a) => Value::Array(a[idx[0]..idx[1]].to_vec()),
        _ => Value::Null,
    })
}

/// Go's comparison kinds.
#[derive(PartialEq, Eq, Clone, Copy)]
enum BasicKind {
    Bool,
    Int,
    Float,
    Str,
    Invalid,
}

fn basic_kind(v: &Value) -> BasicKind {
    match v {
        Value::Bool(_) => BasicKind::Bool,
        Value::Number(n) if n.is_f64() => BasicKind::Float,
        Value::Number(_) => BasicKind::Int,
        Value::String(_) => BasicKind::Str,
        _ => BasicKind::Invalid,
    }
}

fn as_i128(v: &Value) -> i128 {
    v.as_i64()
        .map(i128::from)
        .or_else(|| v.as_u64().map(i128::from))
        .unwrap_or_default()
}

fn eq(a: &Value, rest: &[Value]) -> Result<bool, String> {
    if rest.is_empty() {
        return Err("missing argument for comparison".into());
    }
    let k1 = basic_kind(a);
    for b in rest {
        let k2 = basic_kind(b);
        let truth = match (k1 == k2, k1) {
            (false, _) if !a.is_null() && !b.is_null() => {
                return Err("incompatible types for comparison".into());
            }
            (false, _) => false,
            (true, BasicKind::Bool | BasicKind::Str) => a == b,
            (true, BasicKind::Int) => as_i128(a) == as_i128(b),
            #[allow(clippy::float_cmp)]
            (true, BasicKind::Float) => a.as_f64() == b.as_f64(),
            (true, BasicKind::Invalid) if a.is_null() || b.is_null() => a.is_null() && b.is_null(),
            (true, BasicKind::Invalid) => return Err(non_comparable(a, b)),
        };
        if truth {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Go's error for `eq` on arrays or objects.
fn non_comparable(a: &Value, b: &Value) -> String {
    let s = |v: &Value| printf::sprintf("%s", std::slice::from_ref(v));
    let (ta, tb) = (printf::type_name(a), printf::type_name(b));
    if ta == tb {
        format!("non-comparable type {}: {tb}", s(b))
    } else {
        format!(
            "non-comparable types {}: {ta}, {tb}: {}",
            s(a),
            printf::format_value(b)
        )
    }
}

fn lt(a: &Value, b: &Value) -> Result<bool, String> {
    let (k1, k2) = (basic_kind(a), basic_kind(b));
    if k1 == BasicKind::Invalid || k2 == BasicKind::Invalid {
        return Err("invalid type for comparison".into());
    }
    if k1 != k2 {
        return Err("incompatible types for comparison".into());
    }
    Ok(match k1 {
        BasicKind::Int => as_i128(a) < as_i128(b),
        BasicKind::Float => a.as_f64() < b.as_f64(),
        BasicKind::Str => a.as_str() < b.as_str(),
        BasicKind::Bool | BasicKind::Invalid => return Err("invalid type for comparison".into()),
    })
}
