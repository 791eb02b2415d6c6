//! The plugin commands: `create`, `ls`, `inspect`, `rm`, `gc`,
//! `privileges`, `install`, `push`, `set`, `upgrade`, `enable`, `disable`,
//! `logs`, `restore`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use clap::Args as ClapArgs;
use pluginctl_manager::oci::PluginPrivilege;
use pluginctl_manager::rootfs::layer::Compression;
use pluginctl_manager::{CreateOptions, InstallOptions, Manager, Record};

use crate::global::{Global, runtime};

/// `pluginctl create`.
#[derive(Debug, ClapArgs)]
pub(crate) struct CreateArgs {
    /// Layer compression
    #[arg(long, value_name = "gzip|zstd", default_value = "gzip")]
    compress: String,
    /// The plugin's name, NAME[:TAG]
    name: String,
    /// A directory with config.json and rootfs/, a tar of one, or - for a tar on stdin
    context: PathBuf,
}

pub(crate) fn create(g: &Global, a: &CreateArgs) -> Result<()> {
    let compression = match a.compress.as_str() {
        "gzip" => Compression::GZIP,
        "zstd" => Compression::ZSTD,
        other => bail!("--compress {other:?}: expected gzip or zstd"),
    };
    let m = g.manager_new()?;
    g.say_driver(&m);
    crate::interrupt::cooperate();
    let mut options = CreateOptions::compression(compression).with_cancel(crate::interrupt::flag());
    let bar = (!g.quiet).then(|| crate::progress::layer_bar(&a.name));
    if let Some(shown) = &bar {
        let shown = shown.clone();
        options = options.with_progress(std::sync::Arc::new(move |n| shown.set_position(n)));
    }
    let r = m
        .create(&a.name, &a.context, &options)
        .with_context(|| format!("creating plugin {}", a.name))?;
    if let Some(shown) = bar {
        shown.finish_and_clear();
        let layer = &r.layers[0];
        eprintln!(
            "{}: layer {} ({} bytes), config {}, manifest {}",
            r.familiar_name(),
            layer.digest,
            layer.size,
            r.config_digest,
            r.manifest.digest
        );
    }
    warn_unknown(&r);
    println!("{}", r.familiar_name());
    Ok(())
}

/// `pluginctl ls`.
#[derive(Debug, ClapArgs)]
pub(crate) struct LsArgs {
    /// Full IDs and descriptions
    #[arg(long)]
    no_trunc: bool,
    /// enabled=true|false, capability=NAME (repeatable)
    #[arg(short, long, value_name = "FILTER")]
    filter: Vec<String>,
    /// table (default), table TEMPLATE, json, or a Go template such as
    /// {{.ID}}: {{.Name}}
    #[arg(long)]
    format: Option<String>,
}

/// `ls --filter`, as dockerd applies it: `enabled=true|false`, and
/// `capability=` values ORed, each matching a capability exactly or as an
/// unanchored regular expression; a plugin is listed when *every* one of
/// its interface types matches some value (so one with no types always is).
#[derive(Debug, Default)]
struct Filters {
    enabled: Option<bool>,
    capability: Vec<(String, Option<regex_lite::Regex>)>,
}

impl Filters {
    fn parse(args: &[String]) -> Result<Filters> {
        let mut f = Filters::default();
        let mut enabled = Vec::new();
        for arg in args {
            let (k, v) = arg
                .split_once('=')
                .with_context(|| format!("--filter {arg:?}: expected KEY=VALUE"))?;
            match k {
                "enabled" => enabled.push(v.to_owned()),
                // An invalid expression still matches exactly (dockerd skips it).
                "capability" => f
                    .capability
                    .push((v.to_owned(), regex_lite::Regex::new(v).ok())),
                other => bail!("--filter {arg:?}: unknown filter {other:?} (enabled, capability)"),
            }
        }
        if !enabled.is_empty() {
            f.enabled = Some(if enabled.iter().any(|v| v == "true") {
                true
            } else if enabled.iter().any(|v| v == "false") {
                false
            } else {
                bail!(
                    "--filter enabled={}: enabled takes true or false",
                    enabled[0]
                );
            });
        }
        Ok(f)
    }

    fn matches(&self, r: &Record) -> bool {
        if self.enabled.is_some_and(|e| e != r.enabled) {
            return false;
        }
        if self.capability.is_empty() {
            return true;
        }
        r.config.types().iter().all(|t| {
            self.capability.iter().any(|(v, re)| {
                *v == t.capability || re.as_ref().is_some_and(|re| re.is_match(&t.capability))
            })
        })
    }
}

pub(crate) fn ls(g: &Global, a: &LsArgs) -> Result<()> {
    let filters = Filters::parse(&a.filter)?;
    let m = g.manager()?;
    let records: Vec<Record> = m
        .list()?
        .into_iter()
        .filter(|r| filters.matches(r))
        .collect();
    for u in m.unreadable()? {
        eprintln!(
            "pluginctl: plugin {} cannot be read: {}: {}; `pluginctl rm -f {}` removes it",
            u.id,
            u.path.display(),
            u.error,
            u.id
        );
    }
    let mut out = std::io::stdout().lock();
    if a.format.as_deref() == Some("json") {
        let plugins: Vec<_> = records.iter().map(pluginctl_manager::to_plugin).collect();
        out.write_all(&pluginctl_manager::oci::json::to_vec_pretty(
            &plugins, "    ",
        ))?;
        writeln!(out)?;
        return Ok(());
    }
    let format = crate::format::Ls::parse(a.format.as_deref(), g.quiet)?;
    let rows: Vec<serde_json::Value> = records
        .iter()
        .map(|r| {
            crate::format::ls_row(
                &r.id,
                &r.familiar_name(),
                &r.config.description,
                r.enabled,
                &r.reference,
                a.no_trunc,
            )
        })
        .collect();
    out.write_all(format.render(&rows)?.as_bytes())?;
    out.flush()?;
    for r in &records {
        if let Some(why) = &r.failed {
            eprintln!(
                "pluginctl: plugin {} failed: {why}; see `pluginctl logs {}`",
                r.familiar_name(),
                r.familiar_name()
            );
        } else if r.enabled && m.running(r).is_none() {
            eprintln!(
                "pluginctl: plugin {} is enabled but not running (no supervisor); `pluginctl restore` starts it",
                r.familiar_name()
            );
        } else if let in_use @ [_, ..] = m.in_use(r).as_slice() {
            let mounts: usize = in_use.iter().map(|(_, n)| n).sum();
            eprintln!(
                "pluginctl: plugin {} is in use: {mounts} mount(s) of {} volume(s) by engines",
                r.familiar_name(),
                in_use.len()
            );
        }
    }
    Ok(())
}

/// `pluginctl inspect`.
#[derive(Debug, ClapArgs)]
pub(crate) struct InspectArgs {
    /// json (the default), or a Go template such as {{.Id}} or
    /// {{range .Settings.Env}}{{.}} {{end}}
    #[arg(short, long)]
    format: Option<String>,
    /// Plugins by name, ID or ID prefix
    #[arg(required = true)]
    plugins: Vec<String>,
}

pub(crate) fn inspect(g: &Global, a: &InspectArgs) -> Result<()> {
    let m = g.manager()?;
    // As Docker: what was found is printed, then the errors.
    let mut plugins = Vec::new();
    let mut missing = Vec::new();
    for p in &a.plugins {
        match m.inspect(p) {
            Ok(found) => plugins.push(found),
            Err(e) => missing.push(e),
        }
    }
    print_inspected(&plugins, a.format.as_deref())?;
    failures(
        missing.into_iter().map(anyhow::Error::new).collect(),
        a.plugins.len(),
    )
}

fn print_inspected(plugins: &[pluginctl_manager::oci::Plugin], format: Option<&str>) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        None | Some("" | "json") => {
            out.write_all(&pluginctl_manager::oci::json::to_vec_pretty(
                &plugins, "    ",
            ))?;
            writeln!(out)?;
        }
        Some(template) => {
            let values = plugins
                .iter()
                .map(serde_json::to_value)
                .collect::<Result<Vec<_>, _>>()?;
            out.write_all(crate::format::inspect(template, &values)?.as_bytes())?;
        }
    }
    Ok(())
}

/// `pluginctl rm`.
#[derive(Debug, ClapArgs)]
pub(crate) struct RmArgs {
    /// Remove an enabled plugin too
    #[arg(short, long)]
    force: bool,
    /// Plugins by name, ID or ID prefix
    #[arg(required = true)]
    plugins: Vec<String>,
}

/// Runs `each` for every named plugin, as Docker's commands over several
/// objects do: every one is tried, and the failures are reported by
/// [`failures`].
fn for_each_plugin(names: &[String], mut each: impl FnMut(&str) -> Result<()>) -> Result<()> {
    let errors: Vec<anyhow::Error> = names.iter().filter_map(|p| each(p).err()).collect();
    failures(errors, names.len())
}

/// One line on stderr per failure but the last, which is the command's
/// own error (saying how many of `total` failed when more than one did).
fn failures(mut errors: Vec<anyhow::Error>, total: usize) -> Result<()> {
    let Some(last) = errors.pop() else {
        return Ok(());
    };
    for e in &errors {
        eprintln!("pluginctl: {}", crate::chain(e));
    }
    if errors.is_empty() {
        return Err(last);
    }
    Err(last.context(format!("{} of {total} plugins failed", errors.len() + 1)))
}

pub(crate) fn rm(g: &Global, a: &RmArgs) -> Result<()> {
    let m = g.manager()?;
    let opts = g.run_options();
    for_each_plugin(&a.plugins, |p| {
        if a.force
            && let Ok(r) = m.get(p)
            && (r.enabled || m.running(&r).is_some())
        {
            // Not removed if this fails: it may still run on its rootfs.
            m.disable(&r.id, &opts, true)?;
        }
        match m.remove(p, a.force) {
            Ok(r) => println!("{}", r.familiar_name()),
            // A plugin whose record cannot be read goes only with -f.
            Err(pluginctl_manager::Error::NotFound(_))
                if a.force && m.unreadable()?.iter().any(|u| u.id.starts_with(p)) =>
            {
                println!("{}", m.remove_unreadable(p)?);
            }
            Err(e) => return Err(e.into()),
        }
        Ok(())
    })
}

/// `pluginctl check`.
#[derive(Debug, ClapArgs)]
pub(crate) struct CheckArgs {
    /// Plugins by name, ID or ID prefix (default: every plugin)
    plugins: Vec<String>,
}

/// Verifies installed plugins: blobs against their digests, the rootfs
/// against its layers. One line per difference; exit 1 when any.
pub(crate) fn check(g: &Global, a: &CheckArgs) -> Result<()> {
    let m = g.manager()?;
    let names: Vec<String> = if a.plugins.is_empty() {
        m.list()?.iter().map(Record::familiar_name).collect()
    } else {
        a.plugins.clone()
    };
    let mut differ = 0;
    let mut out = std::io::stdout().lock();
    for n in &names {
        let r = m.check(n).with_context(|| format!("checking {n}"))?;
        if r.is_clean() {
            writeln!(out, "{n}: ok")?;
            continue;
        }
        differ += 1;
        for b in &r.blobs {
            writeln!(out, "{n}: blob {b}")?;
        }
        for (what, list) in [
            ("changed", &r.changed),
            ("missing", &r.missing),
            ("added", &r.added),
        ] {
            for p in list {
                writeln!(out, "{n}: {what} {p}")?;
            }
        }
    }
    out.flush()?;
    if differ > 0 {
        bail!(
            "{differ} of {} plugins differ from what was installed",
            names.len()
        );
    }
    Ok(())
}

/// `pluginctl gc`.
#[derive(Debug, ClapArgs)]
pub(crate) struct GcArgs {
    /// Also delete downloads and creates that no running command holds,
    /// however recent (an interrupted install then starts over)
    #[arg(long)]
    all: bool,
}

pub(crate) fn gc(g: &Global, a: &GcArgs) -> Result<()> {
    let m = g.manager()?;
    let s = if a.all { m.gc_all()? } else { m.gc()? };
    let layers = s.layers.map_or_else(
        || "no layers (another command is running; the next gc takes them)".to_owned(),
        |n| format!("{n} layers"),
    );
    println!(
        "removed {} blobs, {layers} and {} stale downloads, freed {} bytes of blobs",
        s.blobs, s.ingests, s.bytes
    );
    Ok(())
}

fn warn_unknown(r: &Record) {
    for t in pluginctl_manager::unknown_types(&r.config) {
        eprintln!(
            "pluginctl: warning: {}: interface type {t} is not one Docker uses (volumedriver, networkdriver, ipamdriver, authz, logdriver, metricscollector, csicontroller, csinode)",
            r.familiar_name()
        );
    }
}

/// Docker's way of listing privileges before asking.
fn show_privileges(list: &[PluginPrivilege]) -> String {
    list.iter().fold(String::new(), |mut s, p| {
        let _ = writeln!(s, " - {}: {:?}", p.name, p.value);
        s
    })
}

thread_local! {
    /// Set when privileges were refused for want of a terminal to ask on.
    static NO_TERMINAL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// An error of a command that asked for privileges, with what to do when
/// there was no terminal to ask on: one line still.
/// A registry that refused who we are: say how to log in to it.
fn login_hint(e: anyhow::Error, reference: &str) -> anyhow::Error {
    let refused = e.chain().any(|c| {
        matches!(
            c.downcast_ref::<pluginctl_manager::Error>(),
            Some(pluginctl_manager::Error::Registry(r)) if r.is_unauthorized()
        )
    });
    let domain = pluginctl_manager::oci::Reference::parse(reference)
        .map(|r| r.domain().to_owned())
        .ok();
    match domain {
        Some(d) if refused => anyhow::anyhow!(
            "{}; `pluginctl login {d}` stores credentials for it",
            crate::chain(&e)
        ),
        _ => e,
    }
}

fn grant_hint(e: anyhow::Error) -> anyhow::Error {
    if NO_TERMINAL.get() {
        anyhow::anyhow!(
            "{}; there is no terminal to ask on: pass --grant-all-permissions to grant them",
            crate::chain(&e)
        )
    } else {
        e
    }
}

/// Grants `list` with `--grant-all-permissions`, else asks on a terminal,
/// else refuses (nothing to ask on).
fn grant(list: &[PluginPrivilege], all: bool, what: &str) -> bool {
    use std::io::IsTerminal as _;
    if list.is_empty() || all {
        return true;
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        // The command's error names them and says what to do.
        NO_TERMINAL.set(true);
        return false;
    }
    eprint!(
        "Plugin {what:?} is requesting the following privileges:\n{}Do you grant the above permissions? [y/N] ",
        show_privileges(list)
    );
    let mut line = String::new();
    if stdin.read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim(), "y" | "Y" | "yes" | "Yes")
}

/// `pluginctl privileges`.
#[derive(Debug, ClapArgs)]
pub(crate) struct PrivilegesArgs {
    /// table (default) or json
    #[arg(long, default_value = "table")]
    format: String,
    /// The plugin's reference
    reference: String,
}

pub(crate) fn privileges(g: &Global, a: &PrivilegesArgs) -> Result<()> {
    let m = g.manager_new()?;
    let client = g.client()?;
    let list = runtime()?
        .block_on(m.privileges(&client, &a.reference))
        .with_context(|| format!("privileges of {}", a.reference))
        .map_err(|e| login_hint(e, &a.reference))?;
    let mut out = std::io::stdout().lock();
    match a.format.as_str() {
        "json" => {
            out.write_all(&pluginctl_manager::oci::json::to_vec_pretty(&list, "    "))?;
            writeln!(out)?;
        }
        "table" => {
            writeln!(out, "{:<22} {:<45} VALUE", "NAME", "DESCRIPTION")?;
            for p in &list {
                writeln!(
                    out,
                    "{:<22} {:<45} {}",
                    p.name,
                    p.description,
                    p.value.join(",")
                )?;
            }
        }
        other => bail!("--format {other:?}: expected table or json"),
    }
    Ok(())
}

/// `pluginctl install`.
#[derive(Debug, ClapArgs)]
pub(crate) struct InstallArgs {
    /// Local name for the plugin
    #[arg(long)]
    alias: Option<String>,
    /// Do not enable the plugin
    #[arg(long)]
    disable: bool,
    /// Grant every privilege the plugin asks for
    #[arg(long)]
    grant_all_permissions: bool,
    /// The plugin's reference
    reference: String,
    /// Settings, KEY=VALUE
    settings: Vec<String>,
}

pub(crate) fn install(g: &Global, a: &InstallArgs) -> Result<()> {
    let m = g.manager_new()?;
    g.say_driver(&m);
    let client = g.client()?;
    let opts = InstallOptions::new(a.alias.clone(), a.settings.clone());
    let all = a.grant_all_permissions;
    let reference = a.reference.clone();
    let r = runtime()?
        .block_on(m.install(&client, &a.reference, &opts, |p| grant(p, all, &reference)))
        .with_context(|| format!("installing {}", a.reference))
        .map_err(|e| login_hint(e, &a.reference))
        .map_err(grant_hint)?;
    warn_unknown(&r);
    println!("Installed plugin {}", r.familiar_name());
    if !a.disable {
        m.enable(&r.id, &g.run_options())
            .with_context(|| format!("{} is installed but stays disabled", r.familiar_name()))?;
    }
    Ok(())
}

/// `pluginctl push`.
#[derive(Debug, ClapArgs)]
pub(crate) struct PushArgs {
    /// The plugin, NAME[:TAG]
    name: String,
}

pub(crate) fn push(g: &Global, a: &PushArgs) -> Result<()> {
    let m = g.manager()?;
    let client = g.client()?;
    let (tag, digest, size) = runtime()?
        .block_on(m.push(&client, &a.name))
        .with_context(|| format!("pushing {}", a.name))
        .map_err(|e| login_hint(e, &a.name))?;
    println!("{tag}: digest: {digest} size: {size}");
    Ok(())
}

/// `pluginctl set`.
#[derive(Debug, ClapArgs)]
pub(crate) struct SetArgs {
    /// Grant privileges the new settings add
    #[arg(long)]
    grant_all_permissions: bool,
    /// The plugin
    name: String,
    /// KEY=VALUE: NAME=value (env), MOUNT.source=path, DEVICE.path=path, args=…
    #[arg(required = true)]
    settings: Vec<String>,
}

pub(crate) fn set(g: &Global, a: &SetArgs) -> Result<()> {
    let m = g.manager()?;
    let all = a.grant_all_permissions;
    m.set(&a.name, &a.settings, |p| grant(p, all, &a.name))
        .with_context(|| format!("setting {}", a.name))
        .map_err(grant_hint)?;
    Ok(())
}

/// `pluginctl upgrade`.
#[derive(Debug, ClapArgs)]
pub(crate) struct UpgradeArgs {
    /// Grant privileges the new version adds
    #[arg(long)]
    grant_all_permissions: bool,
    /// Allow a reference from another repository than the plugin's
    #[arg(long)]
    skip_remote_check: bool,
    /// The plugin
    name: String,
    /// The reference to upgrade from (default: where the plugin came from)
    reference: Option<String>,
}

pub(crate) fn upgrade(g: &Global, a: &UpgradeArgs) -> Result<()> {
    let m = g.manager()?;
    g.say_driver(&m);
    let client = g.client()?;
    let all = a.grant_all_permissions;
    let r = runtime()?
        .block_on(m.upgrade(
            &client,
            &a.name,
            a.reference.as_deref(),
            a.skip_remote_check,
            |p| grant(p, all, &a.name),
        ))
        .with_context(|| format!("upgrading {}", a.name))
        .map_err(grant_hint)?;
    println!("Upgraded plugin {} to {}", r.familiar_name(), r.reference);
    Ok(())
}

/// `pluginctl enable`.
#[derive(Debug, ClapArgs)]
pub(crate) struct EnableArgs {
    /// Seconds to wait for the plugin's socket
    #[arg(long, default_value = "30")]
    timeout: u64,
    /// Also link the socket where engines discover legacy plugins
    /// (--publish-dir, /run/docker/plugins/NAME.sock); remembered
    #[arg(long, conflicts_with = "no_publish")]
    publish: bool,
    /// Stop publishing the socket (remembered)
    #[arg(long)]
    no_publish: bool,
    /// The plugin
    name: String,
}

pub(crate) fn enable(g: &Global, a: &EnableArgs) -> Result<()> {
    let m = g.manager()?;
    crate::interrupt::cooperate();
    let mut opts = g.run_options();
    opts.cancel = Some(crate::interrupt::flag());
    opts.timeout = std::time::Duration::from_secs(a.timeout);
    opts.publish = match (a.publish, a.no_publish) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    let r = m.enable(&a.name, &opts)?;
    println!("{}", r.familiar_name());
    Ok(())
}

/// `pluginctl disable`.
#[derive(Debug, ClapArgs)]
pub(crate) struct DisableArgs {
    /// Kill the plugin at once instead of waiting 10 s after SIGTERM
    #[arg(short, long)]
    force: bool,
    /// The plugin
    name: String,
}

pub(crate) fn disable(g: &Global, a: &DisableArgs) -> Result<()> {
    let m = g.manager()?;
    let r = m.disable(&a.name, &g.run_options(), a.force)?;
    println!("{}", r.familiar_name());
    Ok(())
}

/// `pluginctl restore`: one line per plugin recorded enabled.
pub(crate) fn restore(g: &Global) -> Result<()> {
    let m = g.manager()?;
    let mut failed = 0;
    for r in m.restore(&g.run_options())? {
        match r.result {
            Ok(true) => println!("{}: started", r.name),
            Ok(false) => println!("{}: running", r.name),
            Err(e) => {
                eprintln!("pluginctl: {e}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        bail!("{failed} plugin(s) could not be restored");
    }
    Ok(())
}

/// `pluginctl supervise` (hidden): what `enable` starts.
#[derive(Debug, ClapArgs)]
pub(crate) struct SuperviseArgs {
    /// Seconds to wait for the plugin's socket
    #[arg(long, default_value = "30")]
    timeout: u64,
    /// The plugin's ID
    id: String,
}

pub(crate) fn supervise(g: &Global, a: &SuperviseArgs) -> Result<()> {
    // A session of its own: the terminal's signals and hangups are not
    // its business; `disable` sends it SIGTERM.
    let _ = rustix::process::setsid();
    let m = g.manager()?;
    let mut opts = g.run_options();
    opts.timeout = std::time::Duration::from_secs(a.timeout);
    let mut report = std::io::stdout();
    m.supervise(&a.id, &opts, &mut report)?;
    Ok(())
}

/// `pluginctl logs`.
#[derive(Debug, ClapArgs)]
pub(crate) struct LogsArgs {
    /// Keep printing what the plugin writes
    #[arg(short, long)]
    follow: bool,
    /// Only the last N lines
    #[arg(long, value_name = "N")]
    tail: Option<usize>,
    /// The plugin
    name: String,
}

pub(crate) fn logs(g: &Global, a: &LogsArgs) -> Result<()> {
    use std::io::Read as _;
    let m = g.manager()?;
    let record = m.get(&a.name)?;
    let path = m.log_path(&record);
    let mut out = std::io::stdout().lock();
    // A plugin never enabled has no log yet: nothing to print, and `-f`
    // waits for one.
    let mut file = match std::fs::File::open(&path) {
        Ok(opened) => Some(opened),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    // The rotated generation first.
    // Plugins write what they like: bytes, shown lossily.
    let mut bytes = Vec::new();
    let older = rotated(&path);
    if let Ok(mut f) = std::fs::File::open(&older) {
        f.read_to_end(&mut bytes)
            .with_context(|| format!("reading {}", older.display()))?;
    }
    if let Some(f) = file.as_mut() {
        f.read_to_end(&mut bytes)
            .with_context(|| format!("reading {}", path.display()))?;
    }
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    let from = a.tail.map_or(0, |n| lines.len().saturating_sub(n));
    for l in &lines[from..] {
        writeln!(out, "{l}")?;
    }
    out.flush()?;
    if a.follow {
        follow(&m, &record, file, &mut out)?;
    }
    Ok(())
}

/// `plugin.log.1` beside `plugin.log`.
fn rotated(path: &std::path::Path) -> PathBuf {
    let mut older = path.as_os_str().to_owned();
    older.push(".1");
    PathBuf::from(older)
}

/// `logs -f`: what the plugin writes from here on, across rotations (the
/// supervisor copies the log to `.1` and truncates it), until the plugin
/// is removed.
fn follow(
    m: &Manager,
    record: &Record,
    mut file: Option<std::fs::File>,
    out: &mut impl std::io::Write,
) -> Result<()> {
    use std::io::{Read as _, Seek as _};
    let path = m.log_path(record);
    let older = rotated(&path);
    let mut pos = match file.as_mut() {
        Some(f) => f.stream_position()?,
        None => 0,
    };
    let mut tick = 0u32;
    loop {
        std::thread::sleep(std::time::Duration::from_millis(200));
        tick += 1;
        if tick.is_multiple_of(5) && m.get(&record.id).is_err() {
            return Ok(()); // removed
        }
        if file.is_none() {
            file = std::fs::File::open(&path).ok();
            pos = 0;
        }
        let Some(f) = file.as_mut() else { continue };
        let len = f.metadata().map_or(0, |md| md.len());
        if len < pos {
            // Rotated: what came after our position went to the older
            // generation first.
            if let Ok(mut o) = std::fs::File::open(&older)
                && o.seek(std::io::SeekFrom::Start(pos)).is_ok()
            {
                let mut rest = Vec::new();
                let _ = o.read_to_end(&mut rest);
                out.write_all(&rest)?;
            }
            pos = 0;
        }
        if len > pos {
            f.seek(std::io::SeekFrom::Start(pos))?;
            let mut chunk = Vec::new();
            f.read_to_end(&mut chunk)?;
            pos += chunk.len() as u64;
            out.write_all(&chunk)?;
            out.flush()?;
        }
    }
}
