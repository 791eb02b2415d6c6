//! Docker's `--format` for `inspect` and `ls`: Go templates
//! (`pluginctl-gotmpl`) over what those commands show, and `table …`
//! formats laid out by Go's tabwriter as the Docker CLI lays them out.

use anyhow::{Context as _, Result};
use serde_json::{Value, json};

use pluginctl_gotmpl::{Mode, Template, tabwrite};

/// Go field names of Docker's plugin types whose JSON keys differ: Docker
/// runs an inspect template against the typed struct first (`{{.ID}}`), then
/// against the JSON (`{{.Id}}`), so both work.
const PLUGIN_FIELDS: &[(&str, &str)] = &[
    ("ID", "Id"),
    ("Rootfs", "rootfs"),
    ("DiffIds", "diff_ids"),
    ("Type", "type"),
];

/// The table `ls` prints by default.
const LS_TABLE: &str = "{{.ID}}\t{{.Name}}\t{{.Description}}\t{{.Enabled}}";

/// What `ls`'s header pass shows for each field.
fn ls_headers() -> Value {
    json!({
        "ID": "ID",
        "Name": "NAME",
        "Description": "DESCRIPTION",
        "Enabled": "ENABLED",
        // Docker 20.10 heads this column IMAGE.
        "PluginReference": "IMAGE",
    })
}

/// A user's template, as the Docker CLI prepares it: `\t` and `\n` written
/// as two characters become a tab and a newline.
fn parse(src: &str) -> Result<Template> {
    let src = src.replace("\\t", "\t").replace("\\n", "\n");
    Template::parse(&src)
        .map(|t| t.with_aliases(PLUGIN_FIELDS))
        .context("template parsing error")
}

fn execute(t: &Template, data: &Value) -> Result<String> {
    let mut out = String::new();
    t.execute(data, &mut out)
        .context("template parsing error")?;
    Ok(out)
}

/// `inspect --format TEMPLATE`: the template over each plugin, a line each.
pub(crate) fn inspect(template: &str, plugins: &[Value]) -> Result<String> {
    let t = parse(template)?;
    let mut out = String::new();
    for p in plugins {
        out.push_str(&execute(&t, p)?);
        out.push('\n');
    }
    Ok(out)
}

/// An `ls` format: the default table, `table TEMPLATE`, or a template.
#[derive(Debug)]
pub(crate) struct Ls {
    template: Template,
    table: bool,
}

impl Ls {
    /// `--format` as given (`None` or `""`: the default table; with
    /// `quiet`, IDs only).
    pub(crate) fn parse(format: Option<&str>, quiet: bool) -> Result<Ls> {
        let format = format.unwrap_or("").trim();
        let (table, src) = match format {
            "" | "table" if quiet => (false, "{{.ID}}"),
            "" | "table" => (true, LS_TABLE),
            f => match f.strip_prefix("table") {
                Some(rest) => (true, rest.trim()),
                None => (false, f),
            },
        };
        Ok(Ls {
            template: parse(src)?,
            table,
        })
    }

    /// The lines for these rows (objects with `ID`, `Name`, `Description`,
    /// `Enabled`, `PluginReference`): a header first for a table, the
    /// columns aligned as the Docker CLI aligns them.
    pub(crate) fn render(self, rows: &[Value]) -> Result<String> {
        let mut text = String::new();
        for r in rows {
            text.push_str(&execute(&self.template, r)?);
            text.push('\n');
        }
        if !self.table {
            return Ok(text);
        }
        let header = self.template.mode(Mode::Header);
        let mut all = execute(&header, &ls_headers())?;
        all.push('\n');
        all.push_str(&text);
        Ok(tabwrite(&all, 10, 1, 3))
    }
}

/// One `ls` row: the fields Docker's plugin list context has.
pub(crate) fn ls_row(
    id: &str,
    name: &str,
    description: &str,
    enabled: bool,
    reference: &str,
    no_trunc: bool,
) -> Value {
    let (id, description) = if no_trunc {
        (id.to_owned(), description.to_owned())
    } else {
        (id.chars().take(12).collect(), ellipsis(description, 45))
    };
    json!({
        "ID": id,
        "Name": name,
        "Description": description,
        "Enabled": enabled,
        "PluginReference": reference,
    })
}

/// At most `max` characters, the last one `…` when cut (Docker's
/// `Ellipsis`).
fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut cut: String = s.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<Value> {
        vec![
            ls_row(
                &"a".repeat(64),
                "vieux/sshfs:latest",
                "sshFS plugin for Docker",
                true,
                "docker.io/vieux/sshfs:latest",
                false,
            ),
            ls_row(&"b".repeat(64), "x:1", &"d".repeat(50), false, "", false),
        ]
    }

    fn ls(format: Option<&str>, quiet: bool) -> String {
        Ls::parse(format, quiet).unwrap().render(&rows()).unwrap()
    }

    #[test]
    fn ls_formats() {
        // Columns: the widest cell + 3, at least 10; the last one as it is.
        let d = format!("{}…", "d".repeat(44));
        let line = |a: &str, b: &str, c: &str, e: &str| format!("{a:<15}{b:<21}{c:<48}{e}\n");
        assert_eq!(
            ls(None, false),
            [
                line("ID", "NAME", "DESCRIPTION", "ENABLED"),
                line(
                    "aaaaaaaaaaaa",
                    "vieux/sshfs:latest",
                    "sshFS plugin for Docker",
                    "true"
                ),
                line("bbbbbbbbbbbb", "x:1", &d, "false"),
            ]
            .concat()
        );
        assert_eq!(
            ls(None, true),
            format!("{}\n{}\n", "a".repeat(12), "b".repeat(12))
        );
        assert_eq!(
            ls(Some("{{.Name}}: {{.Enabled}}"), true),
            "vieux/sshfs:latest: true\nx:1: false\n"
        );
        assert_eq!(
            ls(Some(r"table {{.Name}}\t{{.PluginReference}}"), false),
            "NAME                 IMAGE\n\
             vieux/sshfs:latest   docker.io/vieux/sshfs:latest\n\
             x:1                  \n"
        );
        assert_eq!(
            ls(Some("{{upper .Name}}|{{json .Enabled}}"), false),
            "VIEUX/SSHFS:LATEST|true\nX:1|false\n"
        );
    }

    #[test]
    fn inspect_formats() {
        let p = json!({"Id": "abc", "Name": "n:latest", "Enabled": false,
                       "Settings": {"Env": ["A=1", "B=2"]}});
        let one = |t: &str| inspect(t, std::slice::from_ref(&p)).map_err(|e| format!("{e:#}"));
        assert_eq!(one("{{.ID}} {{.Id}}").unwrap(), "abc abc\n");
        assert_eq!(
            one("{{range .Settings.Env}}{{.}} {{end}}").unwrap(),
            "A=1 B=2 \n"
        );
        assert_eq!(one("{{.Settings.Env}}").unwrap(), "[A=1 B=2]\n");
        assert_eq!(one("{{if .Enabled}}on{{else}}off{{end}}").unwrap(), "off\n");
        assert_eq!(
            one("{{.Nope}}").unwrap_err(),
            "template parsing error: template: :1:2: executing \"\" at <.Nope>: map has no entry for key \"Nope\""
        );
        assert!(
            one("{{nope .}}")
                .unwrap_err()
                .starts_with("template parsing error: ")
        );
    }
}
