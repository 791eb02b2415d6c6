//! Many hosts installing one plugin through a pull-through cache, as
//! fleets do: real registries (an upstream `docker-registry` and a second
//! one in proxy mode), hosts configured by hosts.toml, one root per host.
//! Also `login`/`logout` against a registry with a password.

mod common;

use common::*;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pluginctl_testkit::registry::{Auth, Options, PASSWORD, Registry, USER};

/// A context whose rootfs holds `mib` MiB of incompressible bytes.
fn big_context(dir: &Path, mib: usize) {
    sample_context(dir);
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut data = Vec::with_capacity(mib << 20);
    while data.len() < mib << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    std::fs::create_dir_all(dir.join("rootfs/data")).unwrap();
    std::fs::write(dir.join("rootfs/data/blob.bin"), &data).unwrap();
    std::fs::write(dir.join("rootfs/data/small.txt"), b"hello fleet\n").unwrap();
}

/// `<hosts>/<upstream>/hosts.toml`: the mirror for pull and resolve, then
/// the upstream itself.
fn mirror_hosts(hosts: &Path, upstream: &str, mirror: &str) {
    let d = hosts.join(upstream);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(
        d.join("hosts.toml"),
        format!(
            "server = \"http://{upstream}\"\n\n[host.\"http://{mirror}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
        ),
    )
    .unwrap();
}

fn install(root: &Path, hosts: &Path, name: &str) -> Child {
    pluginctl(root)
        .arg("--hosts-dir")
        .arg(hosts)
        .args(["install", "--disable", "--grant-all-permissions", name])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The one plugin's rootfs in `root`, as it runs.
fn rootfs(root: &Path) -> RootfsView {
    let plugins: Vec<_> = std::fs::read_dir(root.join("plugins"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(plugins.len(), 1, "{plugins:?}");
    rootfs_view(root, &plugins[0])
}

/// Creates `name` from `ctx` in a fresh root and pushes it through the
/// hosts config (to the upstream: the mirror is pull-only).
fn create_and_push(tmp: &Path, hosts: &Path, ctx: &Path, name: &str) {
    let root = tmp.join("builder");
    ok(&pluginctl(&root)
        .arg("create")
        .arg(name)
        .arg(ctx)
        .output()
        .unwrap());
    ok(&pluginctl(&root)
        .arg("--hosts-dir")
        .arg(hosts)
        .args(["push", name])
        .output()
        .unwrap());
}

#[test]
fn thirty_two_hosts_install_through_a_pull_through_cache() {
    let logged = Options {
        access_log: true,
        ..Options::default()
    };
    let upstream = Registry::start_with(&Auth::None, &logged);
    let mirror = Registry::start_with(
        &Auth::None,
        &Options {
            proxy: Some(format!("http://{}", upstream.host)),
            ..logged.clone()
        },
    );
    let tmp = tempfile::tempdir().unwrap();
    let hosts = tmp.path().join("certs.d");
    mirror_hosts(&hosts, &upstream.host, &mirror.host);
    let ctx = tmp.path().join("ctx");
    big_context(&ctx, 8);
    let name = format!("{}/fleet/big:1.0", upstream.host);
    create_and_push(tmp.path(), &hosts, &ctx, &name);
    let log = mirror.log();
    assert!(
        !log.contains("\"PUT /v2/") && !log.contains("\"POST /v2/"),
        "a push reached the pull-only mirror: {log}"
    );
    let want = tree(&ctx.join("rootfs"));

    let roots: Vec<PathBuf> = (0..32)
        .map(|i| tmp.path().join(format!("host{i}")))
        .collect();
    let children: Vec<Child> = roots.iter().map(|r| install(r, &hosts, &name)).collect();
    for (i, c) in children.into_iter().enumerate() {
        let out = c.wait_with_output().unwrap();
        let stdout = ok(&out);
        assert!(stdout.contains("Installed plugin"), "host {i}: {stdout}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("served by the mirror http://{}/", mirror.host)),
            "host {i} does not say the mirror served: {stderr}"
        );
    }
    for (i, r) in roots.iter().enumerate() {
        assert_eq!(tree(rootfs(r).path()), want, "host {i}'s rootfs");
    }

    // Upstream gone: the warm cache still serves installs.
    drop(upstream);
    let late = tmp.path().join("late");
    let out = install(&late, &hosts, &name).wait_with_output().unwrap();
    ok(&out);
    assert_eq!(tree(rootfs(&late).path()), want);
}

#[test]
fn installs_finish_upstream_when_the_mirror_is_killed_mid_transfer() {
    let upstream = Registry::plain();
    let mirror = Registry::start_with(
        &Auth::None,
        &Options {
            proxy: Some(format!("http://{}", upstream.host)),
            ..Options::default()
        },
    );
    let tmp = tempfile::tempdir().unwrap();
    let hosts = tmp.path().join("certs.d");
    mirror_hosts(&hosts, &upstream.host, &mirror.host);
    let ctx = tmp.path().join("ctx");
    big_context(&ctx, 48);
    let name = format!("{}/fleet/cut:1.0", upstream.host);
    create_and_push(tmp.path(), &hosts, &ctx, &name);
    let want = tree(&ctx.join("rootfs"));

    let roots: Vec<PathBuf> = (0..6)
        .map(|i| tmp.path().join(format!("host{i}")))
        .collect();
    let children: Vec<Child> = roots.iter().map(|r| install(r, &hosts, &name)).collect();
    // Kill the mirror once a download through it is under way: some
    // partial layer is on disk.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut killed = false;
    while Instant::now() < deadline && !killed {
        let partial = roots.iter().any(|r| ingest_bytes(r) > 1 << 20);
        if partial {
            let st = Command::new("kill")
                .args(["-9", &mirror.pid().to_string()])
                .status()
                .unwrap();
            assert!(st.success());
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(killed, "no download through the mirror was seen");
    let mut fell_back = 0;
    for (i, c) in children.into_iter().enumerate() {
        let out = c.wait_with_output().unwrap();
        ok(&out);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains(&format!("http://{}/", mirror.host))
            && stderr.contains("trying the next host")
        {
            fell_back += 1;
        }
        assert_eq!(tree(rootfs(&roots[i]).path()), want, "host {i}'s rootfs");
    }
    assert!(fell_back >= 1, "no install said it left the mirror");
}

/// Bytes in a root's partial downloads.
fn ingest_bytes(root: &Path) -> u64 {
    let Ok(dirs) = std::fs::read_dir(root.join("content/ingest")) else {
        return 0;
    };
    dirs.filter_map(Result::ok)
        .filter_map(|d| std::fs::metadata(d.path().join("data")).ok())
        .map(|m| m.len())
        .sum()
}

#[test]
fn login_checks_stores_and_logout_erases() {
    use std::os::unix::fs::PermissionsExt as _;
    let reg = Registry::start(&Auth::Htpasswd, true);
    let tmp = tempfile::tempdir().unwrap();
    let docker = tmp.path().join("docker");
    std::fs::create_dir_all(&docker).unwrap();
    let config = docker.join("config.json");
    let before = "{\n\t\"psFormat\": \"table {{.ID}}\",\n\t\"auths\": {\n\t\t\"other.example\": {\n\t\t\t\"auth\": \"dTpw\"\n\t\t}\n\t},\n\t\"experimental\": \"enabled\"\n}";
    std::fs::write(&config, before).unwrap();
    let root = tmp.path().join("root");
    let login = |password: &str| {
        let mut c = pluginctl(&root);
        c.env("DOCKER_CONFIG", &docker)
            .args(["login", "-u", USER, "--password-stdin", &reg.host])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        std::io::Write::write_all(
            child.stdin.as_mut().unwrap(),
            format!("{password}\n").as_bytes(),
        )
        .unwrap();
        child.wait_with_output().unwrap()
    };

    let err = fails(&login("wrong"));
    assert!(err.contains("refused the user name or password"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        before,
        "a failed login wrote"
    );

    let out = ok(&login(PASSWORD));
    assert!(out.contains("Login Succeeded"), "{out}");
    let text = std::fs::read_to_string(&config).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["psFormat"], "table {{.ID}}");
    assert_eq!(v["experimental"], "enabled");
    assert_eq!(v["auths"]["other.example"]["auth"], "dTpw");
    let auth = v["auths"][&reg.host]["auth"].as_str().unwrap();
    assert_eq!(
        auth, "dGVzdHVzZXI6dGVzdHBhc3M=",
        "base64 of testuser:testpass"
    );
    // Keys keep their order; Docker's tab indentation.
    assert!(text.find("psFormat") < text.find("experimental"), "{text}");
    assert!(text.contains("\n\t\"auths\""), "{text}");
    let mode = std::fs::metadata(&config).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // The stored credentials are used: push and install need them.
    let ctx = tmp.path().join("ctx");
    sample_context(&ctx);
    let name = format!("{}/private/app:1", reg.host);
    ok(&pluginctl(&root)
        .arg("create")
        .arg(&name)
        .arg(&ctx)
        .output()
        .unwrap());
    ok(&pluginctl(&root)
        .env("DOCKER_CONFIG", &docker)
        .args(["push", &name])
        .output()
        .unwrap());

    let out = ok(&pluginctl(&root)
        .env("DOCKER_CONFIG", &docker)
        .args(["logout", &reg.host])
        .output()
        .unwrap());
    assert!(out.contains("Removing login credentials"), "{out}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    assert!(v["auths"].get(&reg.host).is_none());
    assert_eq!(v["auths"]["other.example"]["auth"], "dTpw");
    let out = ok(&pluginctl(&root)
        .env("DOCKER_CONFIG", &docker)
        .args(["logout", &reg.host])
        .output()
        .unwrap());
    assert!(out.contains("Not logged in"), "{out}");
    // Logged out: the registry refuses an anonymous pull.
    let err = fails(
        &pluginctl(&tmp.path().join("other"))
            .env("DOCKER_CONFIG", &docker)
            .args(["privileges", &name])
            .output()
            .unwrap(),
    );
    assert!(err.contains("none is configured"), "{err}");
    assert!(
        err.trim_end().ends_with(&format!(
            "`pluginctl login {}` stores credentials for it",
            reg.host
        )),
        "{err}"
    );
}

#[test]
fn login_uses_the_credential_helper_docker_would() {
    use std::os::unix::fs::PermissionsExt as _;
    let reg = Registry::start(&Auth::Htpasswd, true);
    let tmp = tempfile::tempdir().unwrap();
    let docker = tmp.path().join("docker");
    std::fs::create_dir_all(&docker).unwrap();
    std::fs::write(docker.join("config.json"), "{\"credsStore\": \"pctest\"}").unwrap();
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let record = tmp.path().join("helper.log");
    let helper = bin.join("docker-credential-pctest");
    std::fs::write(
        &helper,
        format!("#!/bin/sh\necho \"$1 $(cat)\" >> {}\n", record.display()),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = |args: &[&str]| {
        pluginctl(&tmp.path().join("root"))
            .env("DOCKER_CONFIG", &docker)
            .env("PATH", &path)
            .args(args)
            .output()
            .unwrap()
    };
    let out = ok(&run(&["login", "-u", USER, "-p", PASSWORD, &reg.host]));
    assert!(out.contains("docker-credential-pctest"), "{out}");
    let log = std::fs::read_to_string(&record).unwrap();
    let stored: serde_json::Value =
        serde_json::from_str(log.strip_prefix("store ").unwrap().trim()).unwrap();
    assert_eq!(stored["ServerURL"], reg.host.as_str());
    assert_eq!(stored["Username"], USER);
    assert_eq!(stored["Secret"], PASSWORD);
    assert_eq!(
        std::fs::read_to_string(docker.join("config.json")).unwrap(),
        "{\"credsStore\": \"pctest\"}",
        "the config file is not touched when a helper stores"
    );
    ok(&run(&["logout", &reg.host]));
    let log = std::fs::read_to_string(&record).unwrap();
    assert!(
        log.lines().any(|l| l == format!("erase {}", reg.host)),
        "{log}"
    );
}

#[test]
fn installs_into_one_root_that_share_a_layer_wait_for_each_other() {
    let reg = Registry::plain();
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path().join("ctx");
    big_context(&ctx, 24);
    let builder = tmp.path().join("builder");
    let names: Vec<String> = ["one", "two"]
        .iter()
        .map(|n| format!("{}/shared/{n}:1", reg.host))
        .collect();
    for n in &names {
        ok(&pluginctl(&builder)
            .arg("create")
            .arg(n)
            .arg(&ctx)
            .output()
            .unwrap());
        ok(&pluginctl(&builder).args(["push", n]).output().unwrap());
    }
    let want = tree(&ctx.join("rootfs"));
    // Five tries: the same layer blob fetched by two installs at once.
    for round in 0..5 {
        let root = tmp.path().join(format!("shared{round}"));
        let children: Vec<Child> = names
            .iter()
            .map(|n| {
                pluginctl(&root)
                    .args(["-q", "install", "--disable", "--grant-all-permissions", n])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in children {
            ok(&c.wait_with_output().unwrap());
        }
        let plugins: Vec<String> = std::fs::read_dir(root.join("plugins"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(plugins.len(), 2, "round {round}");
        for p in &plugins {
            assert_eq!(
                tree(rootfs_view(&root, p).path()),
                want,
                "round {round}: {p}"
            );
        }
        // One layer in the store, applied once, both plugins on it.
        let layers = ok(&pluginctl(&root)
            .args(["layers", "ls", "-q"])
            .output()
            .unwrap());
        assert_eq!(layers.lines().count(), 1, "round {round}: {layers}");
        assert_eq!(chain_of(&root, &plugins[0]), chain_of(&root, &plugins[1]));
        assert!(
            std::fs::read_dir(root.join("content/ingest")).map_or(0, Iterator::count) == 0,
            "round {round}: an ingest was left behind"
        );
    }
}
