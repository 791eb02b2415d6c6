//! `pluginctl layers ls|inspect|diff|mount|umount` (the layer store) and
//! `pluginctl df` (what a root holds and what gc would reclaim).

use std::io::{IsTerminal as _, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use pluginctl_manager::Manager;
use pluginctl_manager::rootfs::compress;

use crate::global::Global;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum LayersCommand {
    /// List the layers, with the plugins that use each
    Ls(LsArgs),
    /// Show layers' records (JSON)
    Inspect {
        /// Layer IDs (ChainIDs, or unique prefixes), diff_ids or
        /// compressed digests
        #[arg(required = true)]
        layers: Vec<String>,
    },
    /// Write a layer's tar, rebuilt byte for byte from the store
    Diff(DiffArgs),
    /// Mount a layer's chain read-only (counted: mounted once, held many
    /// times)
    Mount {
        /// The layer (the top of the chain)
        layer: String,
        /// Where
        target: PathBuf,
    },
    /// Drop one hold of a mounted chain; unmounted when none is left
    #[command(alias = "unmount")]
    Umount {
        /// Where it is mounted
        target: PathBuf,
        /// Unmount whatever the count
        #[arg(short, long)]
        force: bool,
    },
}

#[derive(Debug, clap::Args)]
pub(crate) struct LsArgs {
    /// Only IDs
    #[arg(short, long)]
    quiet: bool,
    /// Full IDs
    #[arg(long)]
    no_trunc: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Compression {
    /// A plain tar (its digest is the layer's diff_id)
    None,
    /// gzip
    Gzip,
    /// zstd
    Zstd,
}

#[derive(Debug, clap::Args)]
pub(crate) struct DiffArgs {
    /// The layer: its ID (or a unique prefix), diff_id or a compressed
    /// digest it was applied from
    layer: String,
    /// Where: a file, or - for stdout
    #[arg(short, long)]
    output: Option<String>,
    /// Compress the output
    #[arg(long, value_enum, default_value = "none")]
    compress: Compression,
}

pub(crate) fn run(g: &Global, c: &LayersCommand) -> Result<()> {
    let m = g.manager()?;
    match c {
        LayersCommand::Ls(a) => ls(&m, a),
        LayersCommand::Inspect { layers } => {
            let mut out = Vec::new();
            for l in layers {
                out.push(m.layers().get(l)?);
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(())
        }
        LayersCommand::Diff(a) => diff(&m, a),
        LayersCommand::Mount { layer, target } => {
            let n = m.layers().mount(layer, target, &counts_dir(g))?;
            println!("{} mounted ({n} holder{})", target.display(), plural(n));
            Ok(())
        }
        LayersCommand::Umount { target, force } => {
            let n = m.layers().unmount(target, &counts_dir(g), *force)?;
            if n == 0 {
                println!("{} unmounted", target.display());
            } else {
                println!("{} still held by {n}", target.display());
            }
            Ok(())
        }
    }
}

/// Mount counts live under the exec root (tmpfs: a reboot clears them).
fn counts_dir(g: &Global) -> PathBuf {
    g.exec_root().join("layers")
}

fn plural(n: u32) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn ls(m: &Manager, a: &LsArgs) -> Result<()> {
    let usage = m.usage()?;
    let short = |d: &pluginctl_manager::oci::Digest| {
        if a.no_trunc {
            d.to_string()
        } else {
            d.encoded()[..12].to_owned()
        }
    };
    if a.quiet {
        for l in &usage.layers {
            println!("{}", short(&l.layer.id));
        }
        return Ok(());
    }
    let mut rows = vec![[
        "LAYER ID".to_owned(),
        "PARENT".to_owned(),
        "SIZE".to_owned(),
        "CREATED".to_owned(),
        "PLUGINS".to_owned(),
    ]];
    for l in &usage.layers {
        rows.push([
            short(&l.layer.id),
            l.layer.parent.as_ref().map_or_else(String::new, short),
            human(l.layer.size),
            l.layer.created.clone(),
            l.plugins.join(","),
        ]);
    }
    print_table(&rows);
    Ok(())
}

fn diff(m: &Manager, a: &DiffArgs) -> Result<()> {
    let layer = m.layers().get(&a.layer)?;
    let id = layer.id.to_string();
    let to_stdout = a.output.as_deref().is_none_or(|o| o == "-");
    if to_stdout && std::io::stdout().is_terminal() {
        bail!("refusing to write layer {id}'s tar to a terminal: use -o FILE, or redirect");
    }
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let write = |out: &mut dyn Write| -> Result<()> {
        match a.compress {
            Compression::None => {
                m.layers().diff(&id, out)?;
            }
            Compression::Gzip => {
                let mut gz = compress::ParallelGzip::new(out, 6, threads);
                m.layers().diff(&id, &mut gz)?;
                gz.finish()?;
            }
            Compression::Zstd => {
                let mut z = compress::zstd_encoder(out, 3, threads)?;
                m.layers().diff(&id, &mut z)?;
                z.finish()?;
            }
        }
        Ok(())
    };
    if to_stdout {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
        write(&mut out)?;
        out.flush()?;
        return Ok(());
    }
    // A file: written beside its name and renamed when complete, so a
    // failure (a file of the layer changed on disk) leaves none.
    let target = PathBuf::from(a.output.as_deref().unwrap_or_default());
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".pluginctl-diff-")
        .tempfile_in(&dir)
        .with_context(|| format!("writing {}", target.display()))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, tmp.as_file());
    write(&mut out)?;
    out.flush()
        .with_context(|| format!("writing {}", target.display()))?;
    drop(out);
    tmp.as_file()
        .set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .with_context(|| format!("writing {}", target.display()))?;
    tmp.persist(&target)
        .with_context(|| format!("writing {}", target.display()))?;
    Ok(())
}

#[derive(Debug, clap::Args)]
pub(crate) struct DfArgs {
    /// Per plugin and per layer
    #[arg(short, long)]
    verbose: bool,
}

pub(crate) fn df(g: &Global, a: &DfArgs) -> Result<()> {
    let m = g.manager()?;
    let u = m.usage()?;
    println!("Storage driver: {} ({})", u.driver.driver, u.driver.why);
    println!();
    let used_layers = u.layers.iter().filter(|l| !l.plugins.is_empty()).count();
    let used_blobs = u.blobs.iter().filter(|b| b.users > 0).count();
    let plugin_bytes: u64 = u.plugins.iter().map(|p| p.size).sum();
    let layer_bytes: u64 = u.layers.iter().map(|l| l.layer.size).sum();
    let blob_bytes: u64 = u.blobs.iter().map(|b| b.size).sum();
    let shared_bytes: u64 = u.plugins.iter().map(|p| p.shared).sum();
    let rows = vec![
        [
            "TYPE".to_owned(),
            "TOTAL".to_owned(),
            "ACTIVE".to_owned(),
            "SIZE".to_owned(),
            "RECLAIMABLE".to_owned(),
        ],
        [
            "Plugins".to_owned(),
            u.plugins.len().to_string(),
            u.plugins.iter().filter(|p| p.enabled).count().to_string(),
            format!("{} ({} shared)", human(plugin_bytes), human(shared_bytes)),
            human(0),
        ],
        [
            "Layers".to_owned(),
            u.layers.len().to_string(),
            used_layers.to_string(),
            human(layer_bytes),
            human(u.reclaimable_layers()),
        ],
        [
            "Blobs".to_owned(),
            u.blobs.len().to_string(),
            used_blobs.to_string(),
            human(blob_bytes),
            human(u.reclaimable_blobs()),
        ],
    ];
    print_table(&rows);
    if a.verbose {
        println!();
        let mut rows = vec![[
            "PLUGIN".to_owned(),
            "ID".to_owned(),
            "LAYERS".to_owned(),
            "SIZE".to_owned(),
            "SHARED".to_owned(),
            "UNIQUE".to_owned(),
        ]];
        for p in &u.plugins {
            rows.push([
                p.name.clone(),
                p.id[..12].to_owned(),
                if p.layers == 0 {
                    "flat".to_owned()
                } else {
                    p.layers.to_string()
                },
                human(p.size),
                human(p.shared),
                human(p.size - p.shared),
            ]);
        }
        print_table(&rows);
        println!();
        let mut rows = vec![[
            "LAYER ID".to_owned(),
            "SIZE".to_owned(),
            "PLUGINS".to_owned(),
            String::new(),
            String::new(),
            String::new(),
        ]];
        for l in &u.layers {
            rows.push([
                l.layer.id.encoded()[..12].to_owned(),
                human(l.layer.size),
                l.plugins.len().to_string(),
                String::new(),
                String::new(),
                String::new(),
            ]);
        }
        print_table(&rows);
    }
    Ok(())
}

/// Bytes as Docker shows them (decimal units, three significant digits).
fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    #[allow(clippy::cast_precision_loss)]
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        return format!("{n}B");
    }
    let num = format!("{v:.3}");
    format!(
        "{}{}",
        num.trim_end_matches('0').trim_end_matches('.'),
        UNITS[i]
    )
}

/// Columns padded by three spaces, as Docker's tables; empty trailing
/// columns left out.
fn print_table<const N: usize>(rows: &[[String; N]]) {
    let mut widths = [0usize; N];
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = std::io::stdout().lock();
    for r in rows {
        let last = r.iter().rposition(|c| !c.is_empty()).unwrap_or(0);
        let mut line = String::new();
        for (i, c) in r.iter().enumerate().take(last + 1) {
            line.push_str(c);
            if i < last {
                line.push_str(&" ".repeat(widths[i] - c.chars().count() + 3));
            }
        }
        let _ = writeln!(out, "{line}");
    }
}
