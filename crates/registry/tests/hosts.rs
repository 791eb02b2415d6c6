//! Registry hosts against real registries: mirrors from hosts.toml (a
//! docker-registry in pull-through cache mode), fallback when a mirror
//! fails, is killed mid-transfer or has a bad certificate, mutual TLS
//! through Docker's cert files, credentials kept from mirrors, login.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use common::{builder, count, pull_and_check, push, recording, reference};
use pluginctl_registry::{Credentials, Event, HostsConfig, StaticCredentials};
use pluginctl_testkit::http::{Reply, Server};
use pluginctl_testkit::image::Image;
use pluginctl_testkit::registry::{Auth, Cert, Options, PASSWORD, Registry, USER};

/// Writes `<dir>/<registry>/hosts.toml` and returns the hosts config.
fn hosts_toml(dir: &Path, registry: &str, text: &str) -> HostsConfig {
    let d = dir.join(registry);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("hosts.toml"), text).unwrap();
    HostsConfig::with_roots(vec![dir.to_owned()])
}

/// A pull-through cache of `upstream`, logging every request.
fn mirror_of(upstream: &Registry, tls: bool) -> Registry {
    Registry::start_with(
        &Auth::None,
        &Options {
            tls,
            proxy: Some(format!("http://{}", upstream.host)),
            access_log: true,
            ..Options::default()
        },
    )
}

/// Whether `reg`'s log says `needle` within 5 s (a registry writes its
/// access log line after the response, so after the client may be done).
fn logged(reg: &Registry, needle: &str) -> bool {
    eventually(|| reg.log().contains(needle))
}

/// Whether `cond` holds within 5 s (access log lines lag the responses).
fn eventually(cond: impl Fn() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    false
}

/// Request lines (`"GET /v2/… HTTP/1.1"`) in a registry's access log.
fn requests(reg: &Registry, method: &str) -> usize {
    reg.log().matches(&format!("\"{method} /v2/")).count()
}

#[tokio::test]
async fn a_mirror_serves_pulls_pushes_go_upstream_and_a_warm_cache_outlives_upstream() {
    let upstream = Registry::start_with(
        &Auth::None,
        &Options {
            access_log: true,
            ..Options::default()
        },
    );
    let mirror = mirror_of(&upstream, false);
    let dir = tempfile::tempdir().unwrap();
    let config = hosts_toml(
        dir.path(),
        &upstream.host,
        &format!(
            "server = \"http://{}\"\n\n[host.\"http://{}\"]\n  capabilities = [\"pull\", \"resolve\"]\n",
            upstream.host, mirror.host
        ),
    );
    let client = builder().hosts(config.clone()).build().unwrap();
    let image = Image::new(21, &[300_000, 40_000]);
    let r = reference(&upstream.host, "fleet/app", "1.0");
    push(&client, &r, &image).await;
    assert_eq!(
        requests(&mirror, "PUT") + requests(&mirror, "POST"),
        0,
        "{}",
        mirror.log()
    );
    assert!(
        eventually(|| requests(&upstream, "PUT") >= 3),
        "{}",
        upstream.log()
    );

    let upstream_gets = requests(&upstream, "GET");
    pull_and_check(&client, &r, &image).await;
    assert!(
        logged(&mirror, "\"GET /v2/fleet/app/manifests/1.0"),
        "the mirror was not asked: {}",
        mirror.log()
    );
    // The blobs came through the mirror (which fetched them upstream):
    // none was asked of upstream by us directly after the push.
    for (d, _) in image.blobs() {
        assert!(
            logged(&mirror, &format!("\"GET /v2/fleet/app/blobs/{}", d.digest)),
            "blob {} not pulled through the mirror: {}",
            d.digest,
            mirror.log()
        );
    }
    assert!(
        eventually(|| requests(&upstream, "GET") > upstream_gets),
        "the cache filled from upstream"
    );

    // Upstream gone: the warm cache serves a fresh client.
    drop(upstream);
    let fresh = builder().hosts(config).build().unwrap();
    pull_and_check(&fresh, &r, &image).await;
}

#[tokio::test]
async fn a_mirror_killed_mid_transfer_falls_back_to_upstream() {
    let upstream = Registry::plain();
    let mirror = mirror_of(&upstream, false);
    let dir = tempfile::tempdir().unwrap();
    let config = hosts_toml(
        dir.path(),
        &upstream.host,
        &format!(
            "server = \"http://{}\"\n[host.\"http://{}\"]\ncapabilities = [\"pull\", \"resolve\"]\n",
            upstream.host, mirror.host
        ),
    );
    let image = Image::new(22, &[12_000_000]);
    let r = reference(&upstream.host, "fleet/big", "1");
    push(&builder().build().unwrap(), &r, &image).await;

    let pid = mirror.pid();
    let killed = Arc::new(AtomicBool::new(false));
    let k2 = Arc::clone(&killed);
    let events = Arc::new(Mutex::new(Vec::new()));
    let e2 = Arc::clone(&events);
    let client = builder()
        .hosts(config)
        .build()
        .unwrap()
        .with_progress(move |e| {
            e2.lock().unwrap().push(e.clone());
            if let Event::Bytes { done, total, .. } = e
                && *done > 2_000_000
                && *total > 10_000_000
                && !k2.swap(true, Ordering::SeqCst)
            {
                let st = std::process::Command::new("kill")
                    .args(["-9", &pid.to_string()])
                    .status()
                    .unwrap();
                assert!(st.success());
            }
        });
    pull_and_check(&client, &r, &image).await;
    assert!(killed.load(Ordering::SeqCst), "the mirror was never killed");
    let failed = count(
        &events,
        |e| matches!(e, Event::HostFailed { host, .. } if host.contains(&mirror.host)),
    );
    assert!(failed >= 1, "{:?}", events.lock().unwrap());
    // The resumed transfer started where the mirror stopped.
    let resumed = count(
        &events,
        |e| matches!(e, Event::Retried { reason, .. } if reason.contains("transfer cut")),
    );
    assert!(resumed >= 1, "{:?}", events.lock().unwrap());
}

#[tokio::test]
async fn failing_and_dead_mirrors_are_skipped_and_a_dead_one_is_dialled_once() {
    let upstream = Registry::plain();
    // Answers /v2/ like a registry and 500 to everything else.
    let failing = Server::start(|req| {
        if req.path() == "/v2/" {
            Reply::new(200, "{}")
        } else {
            Reply::error(500, "UNKNOWN", "the mirror is broken")
        }
    });
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_host = dead.local_addr().unwrap().to_string();
    drop(dead);
    let dir = tempfile::tempdir().unwrap();
    let config = hosts_toml(
        dir.path(),
        &upstream.host,
        &format!(
            "server = \"http://{}\"\n[host.\"http://{dead_host}\"]\n[host.\"{}\"]\n",
            upstream.host,
            failing.url()
        ),
    );
    let image = Image::new(23, &[100_000, 50_000, 20_000]);
    let r = reference(&upstream.host, "fleet/skip", "1");
    push(&builder().build().unwrap(), &r, &image).await;

    let (client, events) = recording(&builder().hosts(config).build().unwrap());
    pull_and_check(&client, &r, &image).await;
    let dead_failures = count(
        &events,
        |e| matches!(e, Event::HostFailed { host, .. } if host.contains(&dead_host)),
    );
    assert_eq!(
        dead_failures,
        1,
        "a dead host is dialled once: {:?}",
        events.lock().unwrap()
    );
    let failing_failures = count(
        &events,
        |e| matches!(e, Event::HostFailed { host, reason, .. } if host.contains(&failing.host()) && reason.contains("500")),
    );
    // The manifest and each of the four blobs: asked once each, not retried.
    assert_eq!(failing_failures, 5, "{:?}", events.lock().unwrap());
    let asked = failing
        .requests()
        .iter()
        .filter(|q| q.path() != "/v2/")
        .count();
    assert_eq!(asked, 5);
}

#[tokio::test]
async fn a_mirror_with_a_bad_certificate_is_skipped_and_its_ca_in_hosts_toml_makes_it_good() {
    let upstream = Registry::plain();
    let mirror = mirror_of(&upstream, true);
    let image = Image::new(24, &[80_000]);
    let r = reference(&upstream.host, "fleet/tls", "1");
    push(&builder().build().unwrap(), &r, &image).await;

    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "server = \"http://{}\"\n[host.\"https://{}\"]\ncapabilities = [\"pull\", \"resolve\"]\n",
        upstream.host, mirror.host
    );
    let config = hosts_toml(dir.path(), &upstream.host, &text);
    let (client, events) = recording(&builder().hosts(config).build().unwrap());
    pull_and_check(&client, &r, &image).await;
    let tls = count(&events, |e| {
        matches!(e, Event::HostFailed { host, reason, .. }
            if host.contains(&mirror.host) && reason.contains("TLS"))
    });
    assert_eq!(tls, 1, "{:?}", events.lock().unwrap());
    assert_eq!(requests(&mirror, "GET"), 0);

    // The mirror's own CA, relative to the hosts.toml.
    let cert = mirror.cert.as_ref().unwrap();
    std::fs::copy(
        &cert.cert,
        dir.path().join(&upstream.host).join("mirror-ca.pem"),
    )
    .unwrap();
    let config = hosts_toml(
        dir.path(),
        &upstream.host,
        &format!("{text}ca = \"mirror-ca.pem\"\n"),
    );
    let (client, events) = recording(&builder().hosts(config).build().unwrap());
    pull_and_check(&client, &r, &image).await;
    assert_eq!(count(&events, |e| matches!(e, Event::HostFailed { .. })), 0);
    assert!(
        logged(&mirror, "\"GET /v2/fleet/tls/manifests/1"),
        "{}",
        mirror.log()
    );
}

#[tokio::test]
async fn mutual_tls_through_docker_cert_files() {
    let certs = tempfile::tempdir().unwrap();
    let (ca, client_cert) = Cert::client_pair(certs.path(), "client");
    let reg = Registry::start_with(
        &Auth::None,
        &Options {
            tls: true,
            client_ca: Some(ca),
            ..Options::default()
        },
    );
    let hosts = tempfile::tempdir().unwrap();
    let d = hosts.path().join(&reg.host);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("registry.crt"), reg.ca_pem()).unwrap();
    std::fs::copy(&client_cert.cert, d.join("me.cert")).unwrap();
    std::fs::copy(&client_cert.key, d.join("me.key")).unwrap();
    let config = HostsConfig::with_roots(vec![hosts.path().to_owned()]);
    // Full verification: the CA comes from the cert files, not from the
    // loopback exemption.
    let client = builder()
        .loopback_insecure(false)
        .hosts(config.clone())
        .build()
        .unwrap();
    let image = Image::new(25, &[60_000]);
    let r = reference(&reg.host, "mtls/app", "1");
    push(&client, &r, &image).await;
    pull_and_check(&client, &r, &image).await;

    // Without the client certificate the registry refuses the handshake.
    std::fs::remove_file(d.join("me.cert")).unwrap();
    std::fs::remove_file(d.join("me.key")).unwrap();
    let bare = builder()
        .loopback_insecure(false)
        .hosts(config.clone())
        .build()
        .unwrap();
    let err = bare.resolve(&r, None).await.unwrap_err().to_string();
    assert!(err.contains(&reg.host), "{err}");

    // A key without its certificate is a mistake, named.
    std::fs::copy(&client_cert.key, d.join("lone.key")).unwrap();
    let lone = builder().hosts(config).build().unwrap();
    let err = lone.resolve(&r, None).await.unwrap_err().to_string();
    assert!(
        err.contains("lone.key: client key without its certificate"),
        "{err}"
    );
}

#[tokio::test]
async fn upstream_credentials_never_reach_a_mirror() {
    let upstream = Registry::start(&Auth::Htpasswd, true);
    let mirror = Server::start(|req| {
        if req.path() == "/v2/" {
            Reply::new(200, "{}")
        } else {
            Reply::error(404, "MANIFEST_UNKNOWN", "not here")
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join(&upstream.host);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("upstream.pem"), upstream.ca_pem()).unwrap();
    let config = hosts_toml(
        dir.path(),
        &upstream.host,
        &format!(
            "server = \"https://{}\"\nca = \"upstream.pem\"\n[host.\"{}\"]\ncapabilities = [\"pull\", \"resolve\"]\n",
            upstream.host,
            mirror.url()
        ),
    );
    let creds = StaticCredentials::new().with(
        &upstream.host,
        Credentials::Basic {
            username: USER.into(),
            password: PASSWORD.into(),
        },
    );
    let client = builder()
        .loopback_insecure(false)
        .hosts(config)
        .credentials(creds)
        .build()
        .unwrap();
    let image = Image::new(26, &[30_000]);
    let r = reference(&upstream.host, "secret/app", "1");
    push(&client, &r, &image).await;
    pull_and_check(&client, &r, &image).await;
    let seen = mirror.requests();
    assert!(
        seen.len() >= 3,
        "the mirror was asked first: {}",
        seen.len()
    );
    assert!(
        seen.iter().all(|q| q.header("authorization").is_none()),
        "a mirror got the upstream's credentials"
    );
    // Login checks against the registry itself.
    client.login(&upstream.host).await.unwrap();
}

#[tokio::test]
async fn login_refuses_a_wrong_password() {
    let reg = Registry::start(&Auth::Htpasswd, true);
    let with = |password: &str| {
        builder()
            .ca_certificate_pem(&reg.ca_pem())
            .credentials(StaticCredentials::new().with(
                &reg.host,
                Credentials::Basic {
                    username: USER.into(),
                    password: password.into(),
                },
            ))
            .build()
            .unwrap()
    };
    with(PASSWORD).login(&reg.host).await.unwrap();
    let err = with("wrong").login(&reg.host).await.unwrap_err();
    assert!(
        matches!(err, pluginctl_registry::Error::Auth { .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("refused the user name or password"),
        "{err}"
    );
}

#[tokio::test]
async fn a_hosts_file_that_does_not_parse_stops_the_pull() {
    let upstream = Registry::plain();
    let dir = tempfile::tempdir().unwrap();
    let config = hosts_toml(
        dir.path(),
        &upstream.host,
        "server = \"http://x\"\n[host.\"http://m\"\ncapabilities = [\"pull\"]\n",
    );
    let client = builder().hosts(config).build().unwrap();
    let r = reference(&upstream.host, "any/app", "1");
    let err = client.resolve(&r, None).await.unwrap_err().to_string();
    let file: PathBuf = dir.path().join(&upstream.host).join("hosts.toml");
    assert!(err.contains(&format!("{} line 2", file.display())), "{err}");
}

#[tokio::test]
async fn a_mirror_that_drops_connections_is_asked_once_and_its_headers_stay_home() {
    let upstream = Registry::plain();
    // Accepts and closes at once: a transport error that used to be retried
    // five times on the probe.
    let dropper = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dropper_host = dropper.local_addr().unwrap().to_string();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let a2 = Arc::clone(&accepted);
    std::thread::spawn(move || {
        for c in dropper.incoming() {
            a2.fetch_add(1, Ordering::SeqCst);
            drop(c);
        }
    });
    // A mirror that sends blob requests elsewhere: the redirect target must
    // not get the mirror's configured header.
    let elsewhere = Server::start(|_| Reply::status(404));
    let target = elsewhere.url();
    let redirecting = Server::start(move |req| {
        if req.path() == "/v2/" {
            Reply::new(200, "{}")
        } else if req.path().contains("/blobs/") {
            Reply::status(307).header("location", &format!("{target}{}", req.path()))
        } else {
            Reply::status(404)
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let config = hosts_toml(
        dir.path(),
        &upstream.host,
        &format!(
            "server = \"http://{}\"\n[host.\"http://{dropper_host}\"]\n[host.\"{}\"]\n  [host.\"{}\".header]\n    x-mirror-key = \"secret\"\n",
            upstream.host,
            redirecting.url(),
            redirecting.url()
        ),
    );
    let image = Image::new(27, &[70_000, 30_000]);
    let r = reference(&upstream.host, "fleet/drop", "1");
    push(&builder().build().unwrap(), &r, &image).await;
    let client = builder().hosts(config).build().unwrap();
    pull_and_check(&client, &r, &image).await;
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "the dropping mirror was dialled again"
    );
    let seen = redirecting.requests();
    assert!(seen.iter().any(|q| q.path().contains("/blobs/")));
    assert!(
        seen.iter()
            .all(|q| q.header("x-mirror-key") == Some("secret"))
    );
    let followed = elsewhere.requests();
    assert!(!followed.is_empty(), "no redirect was followed");
    assert!(
        followed.iter().all(|q| q.header("x-mirror-key").is_none()),
        "a configured header followed a redirect to another host"
    );
}
