//! `pluginctl`: Docker managed plugins without dockerd.
//!
//! The binary is deliberately thin: argument parsing, output and exit codes.
//! Everything else lives in `pluginctl-manager` and the crates below it.

// Doc comments here are clap's help text (`NAME[:TAG]`), not rustdoc links.
#![allow(rustdoc::broken_intra_doc_links)]

mod flatten;
mod format;
mod global;
mod interrupt;
mod layers;
mod login;
mod plugins;
mod progress;

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Docker managed plugins without dockerd.
#[derive(Debug, Parser)]
#[command(
    name = "pluginctl",
    version,
    about,
    long_about = None,
    arg_required_else_help = true
)]
struct Cli {
    #[command(flatten)]
    global: global::Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Flatten an image's layers into one tar (or directory), as applying
    /// them in order would give
    Flatten(flatten::Args),
    /// Create a plugin from a context (config.json and rootfs/)
    Create(plugins::CreateArgs),
    /// List plugins
    #[command(alias = "list")]
    Ls(plugins::LsArgs),
    /// Show plugins as Docker's Plugin objects (JSON)
    Inspect(plugins::InspectArgs),
    /// Remove plugins, then blobs nothing uses
    #[command(alias = "remove")]
    Rm(plugins::RmArgs),
    /// Delete blobs and layers no plugin uses, and stale downloads
    Gc(plugins::GcArgs),
    /// Verify installed plugins: blobs against their digests, each rootfs
    /// against its layers (exit 1 listing what differs)
    Check(plugins::CheckArgs),
    /// The layer store: list, inspect, rebuild a layer's tar, mount a chain
    #[command(subcommand)]
    Layers(layers::LayersCommand),
    /// Show what the root holds: plugins, layers and blobs, shared and
    /// unique sizes, what gc would reclaim
    Df(layers::DfArgs),
    /// Show the privileges a plugin in a registry asks for
    Privileges(plugins::PrivilegesArgs),
    /// Install a plugin from a registry
    Install(plugins::InstallArgs),
    /// Push a plugin to its registry
    Push(plugins::PushArgs),
    /// Change a disabled plugin's settings
    Set(plugins::SetArgs),
    /// Upgrade a disabled plugin, keeping its ID, name and settings
    Upgrade(plugins::UpgradeArgs),
    /// Run a plugin under the OCI runtime until its socket answers
    Enable(plugins::EnableArgs),
    /// Stop a running plugin
    Disable(plugins::DisableArgs),
    /// Print a plugin's output (stdout and stderr)
    Logs(plugins::LogsArgs),
    /// Start every plugin recorded enabled whose supervisor is not running
    /// (at boot; see docs/pluginctl-restore.service)
    Restore,
    /// Check credentials against a registry and store them where Docker
    /// keeps them (its credential helper, or ~/.docker/config.json)
    Login(login::LoginArgs),
    /// Erase a registry's stored credentials
    Logout(login::LogoutArgs),
    /// Internal: a plugin's supervisor, started by `enable`
    #[command(hide = true)]
    Supervise(plugins::SuperviseArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completion {
        /// The shell
        shell: clap_complete::Shell,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                // `pluginctl` alone: the help, on stdout, as --help.
                let help = <Cli as clap::CommandFactory>::command().render_help();
                let _ = write!(std::io::stdout().lock(), "{help}");
                return ExitCode::SUCCESS;
            }
            if e.kind() == ErrorKind::MissingSubcommand {
                // Options but no command: clap's own message would list
                // the hidden `supervise`.
                eprintln!("pluginctl: a command is missing; run 'pluginctl --help'");
                return ExitCode::from(2);
            }
            // One line, as every other error: clap's first paragraph.
            let rendered = e.render().to_string();
            let first: Vec<&str> = rendered
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            let first = first.join(" ");
            let first = first.strip_prefix("error: ").unwrap_or(&first);
            eprintln!("pluginctl: {first}; run 'pluginctl --help'");
            return ExitCode::from(2);
        }
    };
    if !matches!(cli.command, Command::Supervise(_)) {
        // The supervisor handles its signals itself (they stop the plugin).
        interrupt::install();
    }
    tracing_subscriber::fmt()
        .with_max_level(cli.global.log_level)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let result = match cli.command {
        Command::Flatten(args) => flatten::run(&args),
        Command::Create(a) => plugins::create(&cli.global, &a),
        Command::Ls(a) => plugins::ls(&cli.global, &a),
        Command::Inspect(a) => plugins::inspect(&cli.global, &a),
        Command::Rm(a) => plugins::rm(&cli.global, &a),
        Command::Gc(a) => plugins::gc(&cli.global, &a),
        Command::Check(a) => plugins::check(&cli.global, &a),
        Command::Layers(c) => layers::run(&cli.global, &c),
        Command::Df(a) => layers::df(&cli.global, &a),
        Command::Privileges(a) => plugins::privileges(&cli.global, &a),
        Command::Install(a) => plugins::install(&cli.global, &a),
        Command::Login(a) => login::login(&cli.global, &a),
        Command::Logout(a) => login::logout(&a),
        Command::Push(a) => plugins::push(&cli.global, &a),
        Command::Set(a) => plugins::set(&cli.global, &a),
        Command::Upgrade(a) => plugins::upgrade(&cli.global, &a),
        Command::Enable(a) => plugins::enable(&cli.global, &a),
        Command::Disable(a) => plugins::disable(&cli.global, &a),
        Command::Logs(a) => plugins::logs(&cli.global, &a),
        Command::Restore => plugins::restore(&cli.global),
        Command::Supervise(a) => plugins::supervise(&cli.global, &a),
        Command::Completion { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "pluginctl", &mut std::io::stdout());
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) if interrupt::interrupted() => {
            eprintln!("pluginctl: {}", chain(&e));
            ExitCode::from(interrupt::exit_code())
        }
        Err(e) => {
            let _ = std::io::stdout().flush();
            eprintln!("pluginctl: {}", chain(&e));
            ExitCode::FAILURE
        }
    }
}

/// `outer: inner: innermost`, each message once.
pub(crate) fn chain(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if parts.last().is_none_or(|p| !p.ends_with(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}

/// A reader that went away (`pluginctl flatten … -o - | head`) is not an error.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
