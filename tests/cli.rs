//! Black-box tests of the `pluginctl` binary: what a user types, what a user
//! sees, and the exit code.

use std::path::PathBuf;
use std::process::{Command, Output};

/// The `pluginctl` binary of this build: the test binary lives in
/// `target/<profile>/deps/`, the binary one level up.
fn pluginctl() -> Command {
    let exe = std::env::current_exe().expect("path of the test binary");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target profile directory");
    let bin: PathBuf = dir.join("pluginctl");
    assert!(
        bin.is_file(),
        "{} is missing: build it with `cargo build -p pluginctl` (cargo xtask test does)",
        bin.display()
    );
    Command::new(bin)
}

fn run(args: &[&str]) -> Output {
    pluginctl().args(args).output().expect("pluginctl runs")
}

#[test]
fn version_names_the_crate_version() {
    let out = run(&["--version"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("pluginctl {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn help_goes_to_stdout_and_succeeds() {
    for args in [&[][..], &["--help"][..], &["-h"][..]] {
        let out = run(args);
        assert!(out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage: pluginctl [OPTIONS] <COMMAND>"),
            "{args:?}"
        );
        assert!(out.stderr.is_empty());
    }
}

#[test]
fn unknown_command_is_one_line_on_stderr_with_exit_2() {
    let out = run(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err,
        "pluginctl: unrecognized subcommand 'frobnicate'; run 'pluginctl --help'\n"
    );
}

#[test]
fn completions_and_help_for_a_command() {
    let out = run(&["completion", "bash"]);
    assert!(out.status.success());
    let script = String::from_utf8_lossy(&out.stdout);
    assert!(
        script.contains("pluginctl")
            && script.contains("install")
            && script.contains("--grant-all-permissions")
    );
    let out = run(&["completion", "fish"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("complete -c pluginctl"));
    let out = run(&["help", "install"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Usage: pluginctl install"));
    let out = run(&["completion", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
}
