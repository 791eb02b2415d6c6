//! The dependency rules of `shared/DESIGN.md`, checked with `cargo tree`.
//!
//! ```text
//! pluginctl ──► manager ──► content, registry, rootfs, privileges, runtime ──► oci
//! pluginctl ──► gotmpl (depends on no other pluginctl crate)
//! ```
//! Siblings never depend on each other; only `registry`, `manager` and the
//! binary may pull in tokio; `anyhow`, `clap`, `tracing-subscriber` and
//! `indicatif` belong to the binary, xtask and end-to-end tests only.

use std::collections::BTreeSet;
use std::process::Command;

use crate::util::{Result, output, root};

/// Internal crates each library crate may reach, directly or not.
const INTERNAL: &[(&str, &[&str])] = &[
    ("pluginctl-oci", &[]),
    ("pluginctl-gotmpl", &[]),
    ("pluginctl-content", &["pluginctl-oci"]),
    ("pluginctl-registry", &["pluginctl-oci"]),
    ("pluginctl-rootfs", &["pluginctl-oci"]),
    ("pluginctl-privileges", &["pluginctl-oci"]),
    ("pluginctl-runtime", &["pluginctl-oci", "pluginctl-rootfs"]),
    ("pluginctl-layers", &["pluginctl-oci", "pluginctl-rootfs"]),
    (
        "pluginctl-manager",
        &[
            "pluginctl-oci",
            "pluginctl-content",
            "pluginctl-registry",
            "pluginctl-rootfs",
            "pluginctl-privileges",
            "pluginctl-runtime",
            "pluginctl-layers",
        ],
    ),
];

/// Crates that may not build an async runtime or use tokio at all.
const NO_TOKIO: &[&str] = &[
    "pluginctl-oci",
    "pluginctl-gotmpl",
    "pluginctl-content",
    "pluginctl-rootfs",
    "pluginctl-privileges",
    "pluginctl-runtime",
    "pluginctl-layers",
];

/// Application-only crates: never in a library's normal dependencies.
const APP_ONLY: &[&str] = &["anyhow", "clap", "tracing-subscriber", "indicatif"];

/// The rule violations of `krate`, given every package its normal and build
/// dependencies reach (itself included).
pub(crate) fn violations(krate: &str, reached: &BTreeSet<String>) -> Vec<String> {
    let mut found = Vec::new();
    let Some((_, allowed)) = INTERNAL.iter().find(|(k, _)| *k == krate) else {
        return found;
    };
    for dep in reached {
        let why = if dep == krate {
            None
        } else if dep.starts_with("pluginctl") && !allowed.contains(&dep.as_str()) {
            Some(if allowed.is_empty() {
                format!("{krate} depends on no other pluginctl crate")
            } else {
                format!("{krate} may reach only {}", allowed.join(", "))
            })
        } else if dep == "tokio" && NO_TOKIO.contains(&krate) {
            Some("only registry, manager and the binary may use tokio".to_owned())
        } else if APP_ONLY.contains(&dep.as_str()) {
            Some(format!("{dep} belongs to the binary, xtask and tests only"))
        } else {
            None
        };
        if let Some(why) = why {
            found.push(format!(
                "forbidden dependency {krate} -> {dep} ({why}); see `cargo tree -p {krate} -e normal,build -i {dep}`"
            ));
        }
    }
    found
}

/// Runs `cargo tree` for every library crate and fails naming each edge
/// that breaks a rule.
pub(crate) fn check() -> Result<()> {
    let mut all = Vec::new();
    for (krate, _) in INTERNAL {
        let tree = output(
            Command::new("cargo")
                .args([
                    "tree",
                    "-p",
                    krate,
                    "-e",
                    "normal,build",
                    "--prefix",
                    "none",
                    "--format",
                    "{p}",
                ])
                .current_dir(root()),
        )?;
        let reached: BTreeSet<String> = tree
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_owned)
            .collect();
        all.extend(violations(krate, &reached));
    }
    if all.is_empty() {
        eprintln!("xtask: dependency rules hold for {} crates", INTERNAL.len());
        Ok(())
    } else {
        Err(all.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(krate: &str, deps: &[&str]) -> Vec<String> {
        let mut reached: BTreeSet<String> = deps.iter().map(|s| (*s).to_owned()).collect();
        reached.insert(krate.to_owned());
        violations(krate, &reached)
            .into_iter()
            .map(|v| v.split(" (").next().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn allowed_graphs_pass() {
        assert!(check("pluginctl-oci", &["serde", "sha2"]).is_empty());
        assert!(check("pluginctl-content", &["pluginctl-oci", "thiserror"]).is_empty());
        assert!(check("pluginctl-registry", &["pluginctl-oci", "tokio", "reqwest"]).is_empty());
        assert!(
            check(
                "pluginctl-manager",
                &["pluginctl-content", "pluginctl-registry", "tokio"]
            )
            .is_empty()
        );
    }

    #[test]
    fn forbidden_edges_are_named() {
        assert_eq!(
            check("pluginctl-oci", &["pluginctl-content"]),
            ["forbidden dependency pluginctl-oci -> pluginctl-content"]
        );
        assert_eq!(
            check("pluginctl-content", &["pluginctl-oci", "tokio"]),
            ["forbidden dependency pluginctl-content -> tokio"]
        );
        assert_eq!(
            check("pluginctl-registry", &["pluginctl-content"]),
            ["forbidden dependency pluginctl-registry -> pluginctl-content"]
        );
        assert_eq!(
            check("pluginctl-rootfs", &["pluginctl-registry"]),
            ["forbidden dependency pluginctl-rootfs -> pluginctl-registry"]
        );
        assert_eq!(
            check("pluginctl-manager", &["pluginctl"]),
            ["forbidden dependency pluginctl-manager -> pluginctl"]
        );
        assert_eq!(
            check("pluginctl-manager", &["clap", "anyhow"]),
            [
                "forbidden dependency pluginctl-manager -> anyhow",
                "forbidden dependency pluginctl-manager -> clap"
            ]
        );
        assert_eq!(
            check("pluginctl-runtime", &["indicatif"]),
            ["forbidden dependency pluginctl-runtime -> indicatif"]
        );
    }

    #[test]
    fn the_binary_and_tests_are_not_restricted() {
        assert!(check("pluginctl", &["clap", "anyhow", "tokio"]).is_empty());
        assert!(check("xtask", &["anyhow"]).is_empty());
    }
}
