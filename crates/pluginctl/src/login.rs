//! `login` and `logout`: credentials checked against the registry, then
//! stored (or erased) where Docker keeps them.

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use anyhow::{Context as _, Result, bail};
use clap::Args as ClapArgs;
use pluginctl_manager::registry::{Credentials, DockerConfig, StaticCredentials, normalize_host};

use crate::global::{Global, runtime};

/// `pluginctl login`.
#[derive(Debug, ClapArgs)]
pub(crate) struct LoginArgs {
    /// User name (asked on the terminal when missing)
    #[arg(short, long)]
    username: Option<String>,
    /// Password (visible in the process list: prefer --password-stdin)
    #[arg(short, long, conflicts_with = "password_stdin")]
    password: Option<String>,
    /// Read the password from standard input
    #[arg(long)]
    password_stdin: bool,
    /// The registry (default docker.io)
    server: Option<String>,
}

/// `pluginctl logout`.
#[derive(Debug, ClapArgs)]
pub(crate) struct LogoutArgs {
    /// The registry (default docker.io)
    server: Option<String>,
}

/// The registry a server argument names: `https://reg:5000/v2/` is
/// `reg:5000`; Docker Hub's aliases are `docker.io`.
fn registry_of(server: Option<&str>) -> String {
    normalize_host(server.unwrap_or("docker.io"))
}

pub(crate) fn login(g: &Global, a: &LoginArgs) -> Result<()> {
    let registry = registry_of(a.server.as_deref());
    let username = match &a.username {
        Some(u) => u.clone(),
        None => ask("Username: ", false)?,
    };
    if username.is_empty() {
        bail!("login to {registry}: the user name is empty");
    }
    let password = if a.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        line.trim_end_matches(['\n', '\r']).to_owned()
    } else if let Some(p) = &a.password {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        p.clone()
    } else {
        ask("Password: ", true)?
    };
    if password.is_empty() {
        bail!("login to {registry}: the password is empty");
    }
    let creds = StaticCredentials::new().with(
        &registry,
        Credentials::Basic {
            username: username.clone(),
            password: password.clone(),
        },
    );
    let client = g.client_with(creds)?;
    runtime()?.block_on(client.login(&registry))?;
    let path = DockerConfig::default_path()
        .context("no Docker config directory: set DOCKER_CONFIG or HOME")?;
    let config = DockerConfig::load(&path)?;
    let stored = config.store(&path, &registry, &username, &password)?;
    println!("Login Succeeded (credentials in {stored})");
    Ok(())
}

pub(crate) fn logout(a: &LogoutArgs) -> Result<()> {
    let registry = registry_of(a.server.as_deref());
    let path = DockerConfig::default_path()
        .context("no Docker config directory: set DOCKER_CONFIG or HOME")?;
    let config = DockerConfig::load(&path)?;
    match config.erase(&path, &registry)? {
        Some(from) => println!("Removing login credentials for {registry} (from {from})"),
        None => println!("Not logged in to {registry}"),
    }
    Ok(())
}

/// Asks on the terminal; `secret` turns echo off.
fn ask(prompt: &str, secret: bool) -> Result<String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!(
            "no terminal to ask for the {} on: pass {}",
            if secret { "password" } else { "user name" },
            if secret {
                "--password-stdin or -p"
            } else {
                "-u"
            }
        );
    }
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let saved = if secret {
        let t = rustix::termios::tcgetattr(&stdin).context("reading the terminal's settings")?;
        let mut quiet = t.clone();
        quiet.local_modes.remove(rustix::termios::LocalModes::ECHO);
        rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &quiet)
            .context("turning the terminal's echo off")?;
        Some(t)
    } else {
        None
    };
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if let Some(t) = saved {
        let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &t);
        eprintln!();
    }
    read.context("reading the terminal")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}
