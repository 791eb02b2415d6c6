//! Executor: walks the parsed tree over a JSON value, like Go's
//! `text/template` exec with `missingkey=error`.

use std::fmt::Display;

use serde_json::Value;

use super::Error;
use super::funcs::{Func, Param, truth};
use super::parse::{Arg, Command, Control, Ideal, Node, Number, Pipe};
use super::printf;

/// The node an error is reported at (Go's `state.node`).
#[derive(Clone, Copy)]
enum At<'t> {
    Pipe(&'t Pipe),
    Cmd(&'t Command),
    Arg(&'t Arg),
}

/// How a list walk ended.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Normal,
    Break,
    Continue,
}

type R<T> = Result<T, Error>;

/// Runs `root` over `data`, appending output to `out`.
pub(crate) fn execute(
    root: &[Node],
    src: &str,
    aliases: &'static [(&'static str, &'static str)],
    header: bool,
    data: &Value,
    out: &mut String,
) -> R<()> {
    let mut st = State {
        src,
        aliases,
        header,
        vars: vec![Var {
            name: "$",
            value: data.clone(),
            boxed: false,
        }],
        dot_boxed: false,
        node: None,
        out,
    };
    st.walk_list(data, root).map(|_| ())
}

/// A template variable.
struct Var<'t> {
    name: &'t str,
    value: Value,
    /// Go keeps values read out of an object or array in an `interface {}`:
    /// a null there is a typed nil and error messages name `interface {}`,
    /// while a pipeline's result is unwrapped (a null is an invalid value).
    boxed: bool,
}

struct State<'t, 'o> {
    src: &'t str,
    aliases: &'static [(&'static str, &'static str)],
    header: bool,
    vars: Vec<Var<'t>>,
    /// Whether the dot is a range element (see [`Var::boxed`]).
    dot_boxed: bool,
    node: Option<At<'t>>,
    out: &'o mut String,
}

impl<'t> State<'t, '_> {
    fn at(&mut self, at: At<'t>) {
        self.node = Some(at);
    }

    /// Builds Go's `template: :LINE:COL: executing "" at <NODE>: MSG`.
    fn errorf(&self, msg: impl Display) -> Error {
        let Some(at) = self.node else {
            return Error::new(format!("template: : {msg}"));
        };
        let (pos, ctx) = match at {
            At::Pipe(p) => (p.pos, p.to_string()),
            At::Cmd(c) => (c.pos, c.to_string()),
            At::Arg(a) => (a.pos(), a.to_string()),
        };
        let text = self.src.get(..pos).unwrap_or(self.src);
        let (line, col) = match text.rfind('\n') {
            None => (1, pos),
            Some(i) => (1 + text.matches('\n').count(), pos - i - 1),
        };
        Error::new(format!(
            "template: :{line}:{col}: executing \"\" at <{ctx}>: {msg}"
        ))
    }

    fn walk_list(&mut self, dot: &Value, list: &'t [Node]) -> R<Flow> {
        for n in list {
            let flow = self.walk(dot, n)?;
            if flow != Flow::Normal {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    fn walk(&mut self, dot: &Value, node: &'t Node) -> R<Flow> {
        match node {
            Node::Text(s) => self.out.push_str(s),
            Node::Action(pipe) => {
                let v = self.eval_pipeline(dot, pipe)?;
                if pipe.decl.is_empty() {
                    self.out.push_str(&printf::format_value(&v));
                }
            }
            Node::If(c) => return self.walk_if_or_with(false, dot, c),
            Node::With(c) => return self.walk_if_or_with(true, dot, c),
            Node::Range(c) => return self.walk_range(dot, c),
            Node::Break => return Ok(Flow::Break),
            Node::Continue => return Ok(Flow::Continue),
        }
        Ok(Flow::Normal)
    }

    fn walk_if_or_with(&mut self, with: bool, dot: &Value, c: &'t Control) -> R<Flow> {
        let mark = self.vars.len();
        let val = self.eval_pipeline(dot, &c.pipe)?;
        let flow = if truth(&val) && with {
            let saved = std::mem::replace(&mut self.dot_boxed, false);
            let flow = self.walk_list(&val, &c.list);
            self.dot_boxed = saved;
            flow?
        } else if truth(&val) {
            self.walk_list(dot, &c.list)?
        } else if let Some(else_list) = &c.else_list {
            self.walk_list(dot, else_list)?
        } else {
            Flow::Normal
        };
        self.vars.truncate(mark);
        Ok(flow)
    }

    fn walk_range(&mut self, dot: &Value, c: &'t Control) -> R<Flow> {
        let mark = self.vars.len();
        let val = self.eval_pipeline(dot, &c.pipe)?;
        let items: Vec<(Value, Value)> = match val {
            Value::Array(a) => a
                .into_iter()
                .enumerate()
                .map(|(i, e)| (Value::from(i), e))
                .collect(),
            Value::Object(o) => {
                let mut kv: Vec<(String, Value)> = o.into_iter().collect();
                kv.sort_by(|a, b| a.0.cmp(&b.0));
                kv.into_iter().map(|(k, e)| (Value::String(k), e)).collect()
            }
            Value::Null => Vec::new(),
            other => {
                return Err(self.errorf(format!(
                    "range can't iterate over {}",
                    printf::format_value(&other)
                )));
            }
        };
        let inner = self.vars.len();
        let decl = &c.pipe.decl;
        if items.is_empty() {
            let mut flow = Flow::Normal;
            if let Some(else_list) = &c.else_list {
                // As in Go, a {{break}} here only ends this (finished) range.
                flow = self.walk_list(dot, else_list)?;
                if flow == Flow::Break {
                    flow = Flow::Normal;
                }
            }
            self.vars.truncate(mark);
            return Ok(flow);
        }
        for (key, elem) in items {
            match (decl.len(), c.pipe.is_assign) {
                (0, _) => {}
                (1, true) => self.set_var(&decl[0], elem.clone(), true)?,
                (_, true) => {
                    self.set_var(&decl[0], key, false)?;
                    self.set_var(&decl[1], elem.clone(), true)?;
                }
                (1, false) => self.set_top_var(1, elem.clone(), true),
                (_, false) => {
                    self.set_top_var(1, elem.clone(), true);
                    self.set_top_var(2, key, false);
                }
            }
            let saved = std::mem::replace(&mut self.dot_boxed, true);
            let flow = self.walk_list(&elem, &c.list);
            self.dot_boxed = saved;
            self.vars.truncate(inner);
            if flow? == Flow::Break {
                break;
            }
        }
        self.vars.truncate(mark);
        Ok(Flow::Normal)
    }

    fn set_top_var(&mut self, n: usize, value: Value, boxed: bool) {
        let len = self.vars.len();
        if let Some(slot) = len.checked_sub(n).and_then(|i| self.vars.get_mut(i)) {
            slot.value = value;
            slot.boxed = boxed;
        }
    }

    fn set_var(&mut self, name: &str, value: Value, boxed: bool) -> R<()> {
        match self.vars.iter_mut().rev().find(|v| v.name == name) {
            Some(slot) => {
                slot.value = value;
                slot.boxed = boxed;
                Ok(())
            }
            None => Err(self.errorf(format!("undefined variable: {name}"))),
        }
    }

    fn var(&self, name: &str) -> R<&Var<'t>> {
        match self.vars.iter().rev().find(|v| v.name == name) {
            Some(v) => Ok(v),
            None => Err(self.errorf(format!("undefined variable: {name}"))),
        }
    }

    fn eval_pipeline(&mut self, dot: &Value, pipe: &'t Pipe) -> R<Value> {
        self.at(At::Pipe(pipe));
        let mut val = None;
        for cmd in &pipe.cmds {
            val = Some(self.eval_command(dot, cmd, val)?);
        }
        let val = val.unwrap_or(Value::Null);
        for name in &pipe.decl {
            if pipe.is_assign {
                self.set_var(name, val.clone(), false)?;
            } else {
                self.vars.push(Var {
                    name,
                    value: val.clone(),
                    boxed: false,
                });
            }
        }
        Ok(val)
    }

    fn not_a_function(&self, args: &[Arg], fin: bool) -> R<()> {
        if args.len() > 1 || fin {
            let name = args.first().map(ToString::to_string).unwrap_or_default();
            return Err(self.errorf(format!("can't give argument to non-function {name}")));
        }
        Ok(())
    }

    fn eval_command(&mut self, dot: &Value, cmd: &'t Command, fin: Option<Value>) -> R<Value> {
        let Some(first) = cmd.args.first() else {
            return Ok(Value::Null);
        };
        match first {
            Arg::Field { .. } => return self.eval_field_node(dot, first, &cmd.args, fin.is_some()),
            Arg::Chain { .. } => return self.eval_chain_node(dot, first, &cmd.args, fin.is_some()),
            Arg::Variable { .. } => {
                return self.eval_variable_node(first, &cmd.args, fin.is_some());
            }
            Arg::Ident { func, .. } => {
                return self.eval_function(dot, first, *func, At::Cmd(cmd), &cmd.args[1..], fin);
            }
            Arg::Pipe(p) => {
                self.not_a_function(&cmd.args, fin.is_some())?;
                return self.eval_pipeline(dot, p);
            }
            _ => {}
        }
        self.at(At::Arg(first));
        self.not_a_function(&cmd.args, fin.is_some())?;
        match first {
            Arg::Bool(_, b) => Ok(Value::Bool(*b)),
            Arg::Dot(_) => Ok(dot.clone()),
            Arg::Number(n) => self.ideal_constant(n),
            Arg::Str { text, .. } => Ok(Value::String(text.clone())),
            _ => Err(self.errorf("nil is not a command")),
        }
    }

    fn ideal_constant(&self, n: &Number) -> R<Value> {
        match n.ideal {
            Ideal::Int(i) => Ok(Value::from(i)),
            Ideal::Float(f) => Ok(Value::from(f)),
            Ideal::Overflow => Err(self.errorf(format!("{} overflows int", n.text))),
        }
    }

    fn eval_field_node(
        &mut self,
        dot: &Value,
        field: &'t Arg,
        args: &[Arg],
        fin: bool,
    ) -> R<Value> {
        self.at(At::Arg(field));
        let Arg::Field { idents, .. } = field else {
            return Ok(Value::Null);
        };
        self.eval_field_chain(dot, self.dot_boxed, idents, args.len() > 1 || fin)
    }

    fn eval_chain_node(
        &mut self,
        dot: &Value,
        chain: &'t Arg,
        args: &[Arg],
        fin: bool,
    ) -> R<Value> {
        self.at(At::Arg(chain));
        let Arg::Chain { node, fields, .. } = chain else {
            return Ok(Value::Null);
        };
        if let Arg::Nil(_) = node.as_ref() {
            return Err(self.errorf(format!("indirection through explicit nil in {chain}")));
        }
        let base = self.eval_arg(dot, Param::Any, node)?;
        self.eval_field_chain(&base, false, fields, args.len() > 1 || fin)
    }

    fn eval_variable_node(&mut self, var: &'t Arg, args: &[Arg], fin: bool) -> R<Value> {
        self.at(At::Arg(var));
        let Arg::Variable { idents, .. } = var else {
            return Ok(Value::Null);
        };
        let var = self.var(&idents[0])?;
        if idents.len() == 1 {
            self.not_a_function(args, fin)?;
            return Ok(var.value.clone());
        }
        self.eval_field_chain(&var.value, var.boxed, &idents[1..], args.len() > 1 || fin)
    }

    /// Follows `.A.B.C` from `recv`; only the last step may "have arguments".
    /// `boxed` tells how Go holds `recv` (see [`Var::boxed`]).
    fn eval_field_chain(
        &self,
        recv: &Value,
        boxed: bool,
        idents: &[String],
        has_args: bool,
    ) -> R<Value> {
        let mut cur = recv;
        for (i, name) in idents.iter().enumerate() {
            cur = self.eval_field(name, cur, boxed || i > 0, has_args && i + 1 == idents.len())?;
        }
        Ok(cur.clone())
    }

    /// Looks up `name` in `recv`.
    fn eval_field<'v>(
        &self,
        name: &str,
        recv: &'v Value,
        boxed: bool,
        has_args: bool,
    ) -> R<&'v Value> {
        match recv {
            Value::Object(map) => {
                if has_args {
                    return Err(self.errorf(format!("{name} is not a method but has arguments")));
                }
                let alias = || {
                    self.aliases
                        .iter()
                        .find(|(go, _)| *go == name)
                        .and_then(|(_, key)| map.get(*key))
                };
                map.get(name).or_else(alias).ok_or_else(|| {
                    self.errorf(format!(
                        "map has no entry for key {}",
                        printf::quote(name, '"', false)
                    ))
                })
            }
            Value::Null if boxed => {
                Err(self.errorf(format!("nil pointer evaluating interface {{}}.{name}")))
            }
            Value::Null => Err(self.errorf(format!(
                "nil data; no entry for key {}",
                printf::quote(name, '"', false)
            ))),
            other => {
                let t = if boxed {
                    "interface {}"
                } else {
                    printf::type_name(other)
                };
                Err(self.errorf(format!("can't evaluate field {name} in type {t}")))
            }
        }
    }

    fn eval_function(
        &mut self,
        dot: &Value,
        ident: &'t Arg,
        func: Func,
        cmd: At<'t>,
        args: &'t [Arg],
        fin: Option<Value>,
    ) -> R<Value> {
        self.at(At::Arg(ident));
        let name = func.name();
        let (fixed, variadic) = func.signature(self.header);
        let num_in = args.len() + usize::from(fin.is_some());
        if variadic.is_some() {
            if num_in < fixed.len() {
                let msg = format!(
                    "wrong number of args for {name}: want at least {} got {}",
                    fixed.len(),
                    args.len()
                );
                return Err(self.errorf(msg));
            }
        } else if num_in != fixed.len() {
            return Err(self.errorf(format!(
                "wrong number of args for {name}: want {} got {num_in}",
                fixed.len()
            )));
        }
        if matches!(func, Func::And | Func::Or) {
            let decisive = func == Func::Or;
            let mut v = Value::Null;
            for a in args {
                v = self.eval_arg(dot, Param::Value, a)?;
                if truth(&v) == decisive {
                    return Ok(v);
                }
            }
            return Ok(fin.unwrap_or(v));
        }
        let param = |i: usize| fixed.get(i).copied().or(variadic).unwrap_or(Param::Any);
        let mut values = Vec::with_capacity(num_in);
        for (i, a) in args.iter().enumerate() {
            values.push(self.eval_arg(dot, param(i), a)?);
        }
        if let Some(f) = fin {
            values.push(self.validate(f, param(num_in - 1), true)?);
        }
        func.call(values, self.header).map_err(|e| {
            self.at(cmd);
            self.errorf(format!("error calling {name}: {e}"))
        })
    }

    fn eval_arg(&mut self, dot: &Value, param: Param, arg: &'t Arg) -> R<Value> {
        self.at(At::Arg(arg));
        let v = match arg {
            Arg::Dot(_) => dot.clone(),
            Arg::Field { .. } => self.eval_field_node(dot, arg, &[], false)?,
            Arg::Variable { .. } => self.eval_variable_node(arg, &[], false)?,
            Arg::Chain { .. } => self.eval_chain_node(dot, arg, &[], false)?,
            Arg::Pipe(p) => self.eval_pipeline(dot, p)?,
            Arg::Ident { func, .. } => {
                self.eval_function(dot, arg, *func, At::Arg(arg), &[], None)?
            }
            Arg::Nil(_) if matches!(param, Param::Value | Param::Any | Param::List) => {
                return Ok(Value::Null);
            }
            Arg::Nil(_) => {
                return Err(self.errorf(format!("cannot assign nil to {}", param.type_name())));
            }
            Arg::Bool(..) | Arg::Number(_) | Arg::Str { .. } => return self.literal(param, arg),
        };
        let boxed = match arg {
            Arg::Dot(_) => self.dot_boxed,
            Arg::Variable { idents, .. } if idents.len() == 1 => {
                self.var(&idents[0]).is_ok_and(|v| v.boxed)
            }
            Arg::Field { .. } | Arg::Chain { .. } | Arg::Variable { .. } => true,
            _ => false,
        };
        self.validate(v, param, !boxed)
    }

    /// A constant argument checked against the parameter type (Go's
    /// `evalString`, `evalInteger`, `evalEmptyInterface`).
    fn literal(&self, param: Param, arg: &Arg) -> R<Value> {
        match (param, arg) {
            (Param::Value | Param::Any, Arg::Bool(_, b)) => Ok(Value::Bool(*b)),
            (Param::Value | Param::Any, Arg::Number(n)) => self.ideal_constant(n),
            (Param::Value | Param::Any | Param::Str, Arg::Str { text, .. }) => {
                Ok(Value::String(text.clone()))
            }
            (Param::Str, _) => Err(self.errorf(format!("expected string; found {arg}"))),
            (Param::Int, Arg::Number(n)) if n.as_int.is_some() => {
                Ok(Value::from(n.as_int.unwrap_or_default()))
            }
            (Param::Int, _) => Err(self.errorf(format!("expected integer; found {arg}"))),
            _ => Err(self.errorf(format!(
                "can't handle {arg} for arg of type {}",
                param.type_name()
            ))),
        }
    }

    /// Go's `validateType` for a computed value; `untyped` says a null is
    /// Go's invalid value rather than a nil `interface {}`.
    fn validate(&self, v: Value, param: Param, untyped: bool) -> R<Value> {
        if untyped && v.is_null() {
            return match param {
                Param::Str | Param::Int => {
                    Err(self.errorf(format!("invalid value; expected {}", param.type_name())))
                }
                Param::List => Ok(Value::Array(Vec::new())),
                Param::Value | Param::Any => Ok(v),
            };
        }
        let ok = match param {
            Param::Value | Param::Any => true,
            Param::Str => v.is_string(),
            Param::Int => v.is_i64(),
            Param::List => v.is_array(),
        };
        if ok {
            return Ok(v);
        }
        let got = printf::type_name(&v);
        Err(self.errorf(format!(
            "wrong type for value; expected {}; got {got}",
            param.type_name()
        )))
    }
}
