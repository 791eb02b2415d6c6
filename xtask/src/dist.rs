//! `cargo xtask dist`: a reproducible release archive.
//!
//! `target/dist/pluginctl-<version>-<target>.tar.gz` holds the stripped
//! binary, README.md, LICENSE and a SHA256SUMS of those; a SHA256SUMS of the
//! archive sits beside it. Entries are sorted, owned by 0:0, with normalised
//! modes and the last commit's time, and gzip leaves out name and time, so
//! the same sources give the same bytes, wherever they are checked out.

use std::fs;
use std::process::Command;

use crate::util::{self, Result, output, root};

pub(crate) fn run() -> Result<()> {
    let root = root();
    // Paths of this checkout and of the cargo home are mapped to fixed
    // names, so the binary does not depend on where it was built.
    let cargo_home = std::env::var("CARGO_HOME")
        .or_else(|_| std::env::var("HOME").map(|h| format!("{h}/.cargo")))
        .unwrap_or_else(|_| "/root/.cargo".to_owned());
    let rustflags = format!(
        "--remap-path-prefix={}=/src --remap-path-prefix={cargo_home}=/cargo",
        root.display()
    );
    util::run(
        Command::new("cargo")
            .args(["build", "--release", "--locked", "-p", "pluginctl"])
            .env("RUSTFLAGS", rustflags)
            .current_dir(&root),
    )?;
    let bin = root.join("target/release/pluginctl");
    let version = output(Command::new(&bin).arg("--version"))?
        .trim()
        .strip_prefix("pluginctl ")
        .ok_or("pluginctl --version printed an unexpected line")?
        .to_owned();
    let host = output(Command::new("rustc").arg("-vV"))?
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .ok_or("rustc -vV names no host")?
        .to_owned();
    // The last commit's time, so an archive says when its sources changed.
    let mtime = output(
        Command::new("git")
            .args(["log", "-1", "--format=%ct"])
            .current_dir(&root),
    )
    .map_or_else(|_| "0".to_owned(), |s| s.trim().to_owned());

    let name = format!("pluginctl-{version}-{host}");
    let dist = root.join("target/dist");
    let stage = dist.join(&name);
    if stage.exists() {
        fs::remove_dir_all(&stage).map_err(|e| format!("removing {}: {e}", stage.display()))?;
    }
    fs::create_dir_all(&stage).map_err(|e| format!("creating {}: {e}", stage.display()))?;
    for (from, to) in [
        (bin.clone(), "pluginctl"),
        (root.join("README.md"), "README.md"),
        (root.join("LICENSE"), "LICENSE"),
    ] {
        fs::copy(&from, stage.join(to)).map_err(|e| format!("copying {}: {e}", from.display()))?;
    }
    let sums = output(
        Command::new("sha256sum")
            .args(["LICENSE", "README.md", "pluginctl"])
            .current_dir(&stage),
    )?;
    fs::write(stage.join("SHA256SUMS"), sums).map_err(|e| format!("writing SHA256SUMS: {e}"))?;

    let archive = dist.join(format!("{name}.tar.gz"));
    let tmp = dist.join(format!(".{name}.tar.gz.tmp"));
    let script = format!(
        "tar --sort=name --format=gnu --owner=0 --group=0 --numeric-owner \
         --mode='u+rwX,go=rX' --mtime=@{mtime} -cf - {name} | gzip -9 -n > '{}'",
        tmp.display()
    );
    util::run(Command::new("sh").args(["-ec", &script]).current_dir(&dist))?;
    fs::rename(&tmp, &archive).map_err(|e| format!("renaming {}: {e}", tmp.display()))?;
    let sum = output(
        Command::new("sha256sum")
            .arg(archive.file_name().expect("archive has a name"))
            .current_dir(&dist),
    )?;
    fs::write(dist.join("SHA256SUMS"), &sum).map_err(|e| format!("writing SHA256SUMS: {e}"))?;
    fs::remove_dir_all(&stage).map_err(|e| format!("removing {}: {e}", stage.display()))?;
    println!("{}", archive.display());
    print!("{sum}");
    Ok(())
}
