//! System tools: find them, and install the missing ones from Debian.

use std::process::Command;

use crate::util::{Result, run};

/// A command the project needs and the Debian package that has it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tool {
    pub(crate) command: &'static str,
    pub(crate) package: &'static str,
}

/// Whether `command` is on PATH (or is a cargo subcommand binary).
pub(crate) fn have(command: &str) -> bool {
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| dir.join(command).is_file())
}

/// Installs the packages of missing tools with apt-get when running as
/// root; otherwise fails with the packages to install.
pub(crate) fn ensure(tools: &[Tool]) -> Result<()> {
    let mut packages: Vec<&str> = tools
        .iter()
        .filter(|t| !have(t.command))
        .map(|t| t.package)
        .collect();
    packages.sort_unstable();
    packages.dedup();
    if packages.is_empty() {
        return Ok(());
    }
    if !is_root() {
        return Err(format!(
            "missing system packages; install them with: sudo apt-get install -y {}",
            packages.join(" ")
        ));
    }
    eprintln!("xtask: installing {}", packages.join(" "));
    run(Command::new("apt-get")
        .args(["update", "-qq"])
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(&packages)
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    let still: Vec<&str> = tools
        .iter()
        .filter(|t| !have(t.command))
        .map(|t| t.command)
        .collect();
    if still.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "still missing after apt-get install: {}",
            still.join(", ")
        ))
    }
}

#[allow(unsafe_code)]
pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}
