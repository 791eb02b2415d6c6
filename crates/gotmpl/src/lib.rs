//! Go `text/template` (the subset Docker CLI users write in `--format`) and Go
//! `text/tabwriter`, over `serde_json::Value` data.
//!
//! The language follows Go 1.19+: text and `{{ }}` actions, trim markers
//! (`{{- ` / ` -}}`), comments, pipelines, field chains (`.A.B`, `$x.A`,
//! `(pipe).A`), literals, variables (`:=`, `=`), `if`/`else if`/`else`,
//! `range` (with `$i, $e :=`, `else`, `break`, `continue`), `with`/`else`,
//! Go's builtin functions and Docker's (`json`, `split`, `join`, `title`,
//! `lower`, `upper`, `pad`, `truncate`). Missing keys are errors, as with Go's
//! `missingkey=error`. `define`, `template` and `block` are rejected at parse
//! time.
//!
//! Values print as Go's `%v` would print Docker's typed structs: objects print
//! as a struct, `{v1 v2}` in document (field) order, not as Go's
//! `map[k1:v1 k2:v2]`; `null` prints `<nil>`; numbers print as integers when
//! they are integers and as Go's `%v` of a `float64` otherwise.
//!
//! Deliberate differences from Go running the same template over the same
//! JSON decoded into `interface{}` (each follows what Docker's typed structs
//! give, or is simply more useful):
//! - objects print as structs (above); `%+v` gives `{k1:v1 k2:v2}`; `%#v`
//!   gives Go's map syntax;
//! - `null` prints `<nil>`, not `<no value>`;
//! - `json` keeps document (field) order instead of sorting keys;
//! - aliases (see [`Template::with_aliases`]) map Go field names to JSON keys;
//! - `truncate` counts chars, so it never splits UTF-8;
//! - `join` takes any array (non-strings print as `%v`); `slice` accepts
//!   integer indexes read from the data;
//! - some error texts differ: an array is always `[]interface {}` (Go may say
//!   `[]string`), a string's byte is `int` (Go: `uint8`), `len nil` reports
//!   `len of nil pointer`.
//!
//! Not supported: `define`/`template`/`block` (parse error), complex
//! constants, the hex and binary float verbs (`%x`, `%X`, `%b` on floats),
//! custom delimiters, and features newer than Go 1.19 (`range` over an
//! integer, `else with`); `range $i, $e = x` assigns like newer Go.
//!
//! ```
//! use pluginctl_gotmpl::Template;
//! let t = Template::parse("{{.Name}} {{if .Enabled}}on{{else}}off{{end}}").unwrap();
//! let mut out = String::new();
//! t.execute(&serde_json::json!({"Name": "sshfs", "Enabled": false}), &mut out).unwrap();
//! assert_eq!(out, "sshfs off");
//! ```

mod exec;
mod float;
mod funcs;
mod lex;
mod literal;
mod parse;
mod printf;
mod strfuncs;
mod tabwriter;

use std::fmt;

pub use tabwriter::tabwrite;

/// A parsed template, ready to execute.
#[derive(Debug)]
pub struct Template {
    root: Vec<parse::Node>,
    src: String,
    aliases: &'static [(&'static str, &'static str)],
    mode: Mode,
}

/// A parse or execution error, with a message shaped like Go's
/// (`template: :1:2: executing "" at <.Foo>: map has no entry for key "Foo"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    msg: String,
}

impl Error {
    pub(crate) fn new(msg: String) -> Error {
        Error { msg }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for Error {}

/// Execution mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    /// Normal execution.
    #[default]
    Normal,
    /// Docker's table-header pass: `json`, `split`, `join`, `title`, `lower`,
    /// `upper`, `pad` and `truncate` return their first argument unchanged.
    Header,
}

impl Template {
    /// Parses a template.
    ///
    /// # Errors
    /// A Go-shaped parse error, e.g. `template: :1: function "foo" not defined`.
    pub fn parse(src: &str) -> Result<Template, Error> {
        let root = parse::parse(src)?;
        Ok(Template {
            root,
            src: src.to_string(),
            aliases: &[],
            mode: Mode::Normal,
        })
    }

    /// Go field name -> JSON key, tried when `.Name` is not a key of the object (e.g. ("ID","Id")).
    #[must_use]
    pub fn with_aliases(self, aliases: &'static [(&'static str, &'static str)]) -> Template {
        Template { aliases, ..self }
    }

    /// Sets the execution mode.
    #[must_use]
    pub fn mode(self, m: Mode) -> Template {
        Template { mode: m, ..self }
    }

    /// Executes the template over `data`, appending to `out`. On error, `out`
    /// keeps what was written before the failing action, as with Go.
    ///
    /// # Errors
    /// A Go-shaped execution error, e.g.
    /// `template: :1:2: executing "" at <.Foo>: map has no entry for key "Foo"`.
    pub fn execute(&self, data: &serde_json::Value, out: &mut String) -> Result<(), Error> {
        exec::execute(
            &self.root,
            &self.src,
            self.aliases,
            self.mode == Mode::Header,
            data,
            out,
        )
    }
}

#[cfg(test)]
mod tests;
