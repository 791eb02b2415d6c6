//! `pluginctl`: Docker managed plugins without dockerd.
//!
//! The binary is deliberately thin: argument parsing, output and exit codes.
//! Everything else lives in `pluginctl-manager` and the crates below it.

use std::io::Write;
use std::process::ExitCode;

const USAGE: &str = "\
Usage: pluginctl [OPTIONS] COMMAND

Docker managed plugins without dockerd.

Options:
  -h, --help       Print this help
  -V, --version    Print the version

The plugin commands (create, install, privileges, push, ls, inspect, enable,
disable, set, upgrade, rm, flatten, gc) arrive with the crates that implement
them; this build has none of them yet.
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut out = std::io::stdout().lock();
    let printed = match args.first().map(String::as_str) {
        None | Some("-h" | "--help" | "help") => out.write_all(USAGE.as_bytes()),
        Some("-V" | "--version") => writeln!(out, "pluginctl {}", env!("CARGO_PKG_VERSION")),
        Some(other) => {
            eprintln!("pluginctl: unknown command {other:?}; run 'pluginctl --help'");
            return ExitCode::from(2);
        }
    };
    match printed {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`pluginctl --help | head -1`) is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pluginctl: writing to stdout: {e}");
            ExitCode::from(1)
        }
    }
}
