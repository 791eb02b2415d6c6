//! The store commands at their edges, through the binary: roots that do
//! not exist, several plugins named at once, one-line errors, Ctrl-C in
//! the middle of a create, `logs -f` of a plugin that never ran or goes
//! away, `set` of mount sources.

mod common;

use common::*;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn lines(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn options_without_a_command_is_a_usage_error_naming_no_hidden_command() {
    let out = Command::new(bin()).args(["--root", "/x"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err,
        "pluginctl: a command is missing; run 'pluginctl --help'\n"
    );
    let help = Command::new(bin()).output().unwrap();
    assert!(!String::from_utf8_lossy(&help.stdout).contains("supervise"));
}

#[test]
fn a_mistyped_root_is_named_and_not_made() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("typo");
    for args in [
        &["ls"][..],
        &["inspect", "x"],
        &["rm", "x"],
        &["gc"],
        &["logs", "x"],
        &["restore"],
    ] {
        let err = fails(&pluginctl(&root).args(args).output().unwrap());
        assert_eq!(
            err,
            format!(
                "pluginctl: pluginctl root {} does not exist (create and install make one)\n",
                root.display()
            ),
            "{args:?}"
        );
        assert!(!root.exists(), "{args:?} made the root");
    }
    // The same through $PLUGINCTL_ROOT.
    let out = Command::new(bin())
        .arg("ls")
        .env("PLUGINCTL_ROOT", &root)
        .output()
        .unwrap();
    assert!(fails(&out).contains("does not exist"));
    assert!(!root.exists());
}

#[test]
fn several_plugins_at_once_print_what_was_found_then_one_line_per_error() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let ctx = tmp.path().join("ctx");
    sample_context(&ctx);
    for name in ["a", "b"] {
        ok(&pluginctl(&root)
            .args(["create", name])
            .arg(&ctx)
            .output()
            .unwrap());
    }
    // inspect A missing B: A and B, then the error (Docker's order).
    let out = pluginctl(&root)
        .args(["inspect", "a", "missing", "b"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = shown
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a:latest", "b:latest"]);
    assert_eq!(
        lines(&out.stderr),
        ["pluginctl: plugin \"missing\" not found"]
    );
    let out = pluginctl(&root)
        .args(["inspect", "--format", "{{.Name}}", "nope", "a", "nada"])
        .output()
        .unwrap();
    assert_eq!(lines(&out.stdout), ["a:latest"]);
    assert_eq!(
        lines(&out.stderr),
        [
            "pluginctl: plugin \"nope\" not found",
            "pluginctl: 2 of 3 plugins failed: plugin \"nada\" not found"
        ]
    );

    // rm: every one is tried; one line per failure.
    let out = pluginctl(&root)
        .args(["rm", "a", "missing"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(lines(&out.stdout), ["a:latest"]);
    assert_eq!(
        lines(&out.stderr),
        ["pluginctl: plugin \"missing\" not found"]
    );
    let ls = ok(&pluginctl(&root)
        .args(["ls", "--format", "json"])
        .output()
        .unwrap());
    assert!(
        !ls.contains("\"a:latest\"") && ls.contains("\"b:latest\""),
        "{ls}"
    );

    // A bad name is explained once.
    let err = fails(
        &pluginctl(&root)
            .args(["create", "Vol"])
            .arg(&ctx)
            .output()
            .unwrap(),
    );
    assert_eq!(err.matches("\"Vol\"").count(), 1, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// A context of 96 MiB that does not compress: a create of a few hundred
/// milliseconds to interrupt.
fn big_context(dir: &Path) {
    std::fs::create_dir_all(dir.join("rootfs/data")).unwrap();
    for i in 0..3 {
        std::fs::write(
            dir.join(format!("rootfs/data/f{i}")),
            pluginctl_testkit::pattern(i, 32 << 20),
        )
        .unwrap();
    }
    std::fs::write(
        dir.join("config.json"),
        r#"{"interface":{"types":["docker.volumedriver/1.0"],"socket":"s.sock"}}"#,
    )
    .unwrap();
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir).map_or_else(
        |_| Vec::new(),
        |d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        },
    )
}

#[test]
fn an_interrupted_create_leaves_nothing_and_gc_all_takes_idle_ingests() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let ctx = tmp.path().join("ctx");
    big_context(&ctx);
    // The root exists, so that every interrupt lands in the create itself.
    ok(&pluginctl(&root)
        .args(["create", "first"])
        .arg(&ctx)
        .output()
        .unwrap());
    for delay_ms in [60, 150, 300] {
        let child = pluginctl(&root)
            .args(["create", "p"])
            .arg(&ctx)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        interrupt(child.id());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(130), "{delay_ms} ms: {err}");
        assert!(err.contains("interrupted"), "{delay_ms} ms: {err}");
        // Nothing of it: no ingest, no plugin directory, no staging.
        assert_eq!(entries(&root.join("content/ingest")), Vec::<String>::new());
        assert_eq!(entries(&root.join("plugins")).len(), 1, "{delay_ms} ms");
        assert_eq!(entries(&root.join("tmp")), Vec::<String>::new());
    }
    // Killed outright, it leaves its ingest: the next command (any) takes
    // it with the half-made plugin.
    let mut child = pluginctl(&root)
        .args(["create", "p"])
        .arg(&ctx)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(150));
    child.kill().unwrap();
    let _ = child.wait();
    ok(&pluginctl(&root).arg("ls").output().unwrap());
    assert_eq!(entries(&root.join("content/ingest")), Vec::<String>::new());
    assert_eq!(entries(&root.join("plugins")).len(), 1);
    let gc = ok(&pluginctl(&root).args(["gc", "--all"]).output().unwrap());
    assert!(gc.starts_with("removed "), "{gc}");
}

#[test]
fn logs_follow_waits_for_a_log_and_ends_with_the_plugin() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let ctx = tmp.path().join("ctx");
    sample_context(&ctx);
    ok(&pluginctl(&root)
        .args(["create", "quiet"])
        .arg(&ctx)
        .output()
        .unwrap());
    // Never enabled: no log, and both forms agree that there is nothing.
    assert_eq!(
        ok(&pluginctl(&root).args(["logs", "quiet"]).output().unwrap()),
        ""
    );
    let mut follow = pluginctl(&root)
        .args(["logs", "-f", "quiet"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(600));
    assert!(follow.try_wait().unwrap().is_none(), "logs -f ended early");
    // A log appears (as when an enable starts): it is followed.
    let id = ok(&pluginctl(&root)
        .args(["inspect", "--format", "{{.Id}}", "quiet"])
        .output()
        .unwrap())
    .trim()
    .to_owned();
    std::fs::write(root.join("plugins").join(&id).join("plugin.log"), "hello\n").unwrap();
    std::thread::sleep(Duration::from_millis(600));
    ok(&pluginctl(&root).args(["rm", "quiet"]).output().unwrap());
    let started = Instant::now();
    let status = loop {
        if let Some(s) = follow.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "logs -f still runs after rm"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success());
    let mut out = String::new();
    std::io::Read::read_to_string(&mut follow.stdout.take().unwrap(), &mut out).unwrap();
    assert_eq!(out, "hello\n");
}

#[test]
fn set_asks_in_one_line_and_refuses_relative_sources() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let ctx = tmp.path().join("ctx");
    std::fs::create_dir_all(ctx.join("rootfs")).unwrap();
    std::fs::write(
        ctx.join("config.json"),
        r#"{"interface":{"types":["docker.volumedriver/1.0"],"socket":"s.sock"},
            "mounts":[{"name":"data","source":"/var/lib/x","destination":"/data",
                       "type":"bind","options":["rbind"],"settable":["source"]}]}"#,
    )
    .unwrap();
    ok(&pluginctl(&root)
        .args(["create", "m"])
        .arg(&ctx)
        .output()
        .unwrap());
    // No terminal to ask on: one line naming what was asked and what to do.
    let err = fails(
        &pluginctl(&root)
            .args(["set", "m", "data.source=/srv/new"])
            .output()
            .unwrap(),
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("mount: /srv/new") && err.contains("pass --grant-all-permissions"),
        "{err}"
    );
    for bad in ["data.source=", "data.source=relative"] {
        let err = fails(
            &pluginctl(&root)
                .args(["set", "--grant-all-permissions", "m", bad])
                .output()
                .unwrap(),
        );
        assert!(err.contains("must be an absolute path"), "{bad}: {err}");
    }
    ok(&pluginctl(&root)
        .args([
            "set",
            "--grant-all-permissions",
            "m",
            "data.source=/srv/new",
        ])
        .output()
        .unwrap());
    // Back to the created default: granted already, nothing asked.
    ok(&pluginctl(&root)
        .args(["set", "m", "data.source=/var/lib/x"])
        .output()
        .unwrap());
}
