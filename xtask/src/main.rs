//! `cargo xtask`: the project's own build, test, CI, benchmark and release
//! tasks, in Rust so that they run the same everywhere (matklad's pattern).
//!
//! ```text
//! cargo xtask test           every test tier, provisioning what it needs
//! cargo xtask ci             fmt, clippy, dependency rules, test, doc, deny
//! cargo xtask deps           the dependency rules of shared/DESIGN.md alone
//! cargo xtask dist           reproducible release archive under target/dist
//! cargo xtask bench [NAME]   benchmarks against peer tools (content, rootfs, registry,
//!                            manager, runtime, fleet, layers)
//! cargo xtask fuzz [SECONDS] every cargo-fuzz target for SECONDS (default 30)
//! ```

mod bench;
mod demo;
mod deps;
mod dist;
mod localdocker;
mod localreg;
mod tools;
mod util;

use std::process::ExitCode;

use util::{Result, cargo, root};

const USAGE: &str = "usage: cargo xtask <test|ci|demo|deps|dist|bench [content|rootfs|registry|manager|runtime|fleet|layers]|fuzz [SECONDS]>";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("ci") => ci(),
        Some("demo") => demo::run(),
        Some("deps") => deps::check(),
        Some("dist") => dist::run(),
        Some("bench") => bench::run(&args[1..]),
        Some("fuzz") => fuzz(args.get(1).map(String::as_str)),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(USAGE.to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// System tools the test tiers need, as (command, Debian package).
const TEST_TOOLS: &[tools::Tool] = &[
    tools::Tool {
        command: "umoci",
        package: "umoci",
    },
    // The registry client's integration tier: the CNCF distribution
    // registry, skopeo for interop, openssl for certificates and JWTs.
    tools::Tool {
        command: "docker-registry",
        package: "docker-registry",
    },
    tools::Tool {
        command: "skopeo",
        package: "skopeo",
    },
    tools::Tool {
        command: "openssl",
        package: "openssl",
    },
    // Docker interop: a private dockerd (with its containerd and runc).
    tools::Tool {
        command: "dockerd",
        package: "docker.io",
    },
    tools::Tool {
        command: "curl",
        package: "curl",
    },
    // The runtime tier runs plugins under runc (docker.io brings it too).
    tools::Tool {
        command: "runc",
        package: "runc",
    },
    // A static shell for a container image of one file: Docker runs it
    // with a volume our published plugin serves.
    tools::Tool {
        command: "busybox",
        package: "busybox-static",
    },
    // The engine most of our users run: podman finds a published volume
    // driver through the drop-in enable writes.
    tools::Tool {
        command: "podman",
        package: "podman",
    },
];

/// Every test tier: unit, integration, end-to-end and doc tests.
fn test() -> Result<()> {
    tools::ensure(TEST_TOOLS)?;
    // The end-to-end tests run the real binary; test runners build only
    // test targets.
    cargo(&["build", "--quiet", "-p", "pluginctl"])?;
    // The sample plugins, static, for the runtime and engine tiers.
    demo::build_sample_plugins()?;
    // Doc tests first: nextest does not run them, and its summary should be
    // the last thing printed.
    cargo(&["test", "--workspace", "--doc", "--quiet"])?;
    if tools::have("cargo-nextest") {
        let profile = if std::env::var_os("CI").is_some() {
            "ci"
        } else {
            "default"
        };
        cargo(&["nextest", "run", "--workspace", "--profile", profile])
    } else {
        eprintln!(
            "xtask: cargo-nextest not found; using cargo test (cargo install cargo-nextest for the nicer runner)"
        );
        cargo(&["test", "--workspace", "--all-targets"])
    }
}

/// The cargo-fuzz targets in `fuzz/`: tar reader, whiteout fold (flatten's
/// model), references, manifests and plugin configs. libFuzzer needs
/// nightly flags; `RUSTC_BOOTSTRAP=1` lets the stable toolchain accept them.
fn fuzz(seconds: Option<&str>) -> Result<()> {
    let seconds: u64 = seconds
        .map_or(Ok(30), str::parse)
        .map_err(|_| "fuzz takes a number of seconds".to_owned())?;
    if !tools::have("cargo-fuzz") {
        cargo(&["install", "--locked", "cargo-fuzz"])?;
    }
    for target in ["tar_reader", "whiteout_fold", "reference", "manifest"] {
        util::run(
            std::process::Command::new("cargo")
                // LeakSanitizer reports std's per-thread bookkeeping of the
                // scoped threads flatten spawns as leaks; memory blow-ups
                // are still caught by the RSS limit.
                .args([
                    "fuzz",
                    "run",
                    target,
                    "--",
                    &format!("-max_total_time={seconds}"),
                    "-rss_limit_mb=2048",
                    "-detect_leaks=0",
                ])
                .env("RUSTC_BOOTSTRAP", "1")
                .current_dir(root()),
        )?;
    }
    eprintln!("xtask: every fuzz target ran {seconds} s without a finding");
    Ok(())
}

/// Everything a change must pass before it lands.
fn ci() -> Result<()> {
    cargo(&["fmt", "--all", "--", "--check"])?;
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    deps::check()?;
    test()?;
    util::run(
        std::process::Command::new("cargo")
            .args(["doc", "--workspace", "--no-deps"])
            .env("RUSTDOCFLAGS", "-D warnings")
            .current_dir(root()),
    )?;
    if !tools::have("cargo-deny") && std::env::var_os("CI").is_some() {
        cargo(&["install", "--locked", "cargo-deny"])?;
    }
    if tools::have("cargo-deny") {
        // Advisories need the advisory database from the network, which this
        // project's machines cannot reach; the other checks are offline.
        cargo(&["deny", "check", "bans", "licenses", "sources"])?;
    } else {
        eprintln!(
            "xtask: skipped cargo deny: cargo-deny is not installed (cargo install --locked cargo-deny)"
        );
    }
    eprintln!("xtask: ci passed");
    Ok(())
}
