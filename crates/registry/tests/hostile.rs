//! A hostile in-process registry: each test breaks one rule and checks the
//! client gives a clear error or the right recovery, and that nothing
//! unverified reaches a sink's commit.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use pluginctl_oci::{Descriptor, Digest, Index, Platform, Reference};
use pluginctl_registry::{BytesSource, Error, Event};
use pluginctl_testkit::http::{Reply, Request, Server};
use pluginctl_testkit::image::Image;

type Tweak = dyn Fn(&Request) -> Option<Reply> + Send + Sync;

/// A registry serving `image` as `repo:1` (and any manifest PUT to it),
/// accepting uploads; `tweak` answers first when it returns `Some`.
fn serve(
    image: &Image,
    tweak: impl Fn(&Request) -> Option<Reply> + Send + Sync + 'static,
) -> Server {
    let mut blobs: HashMap<String, Vec<u8>> = image
        .blobs()
        .into_iter()
        .map(|(d, b)| (d.digest.to_string(), b))
        .collect();
    let manifest = image.manifest.clone();
    let mt = image.media_type.to_string();
    blobs.insert(image.digest().to_string(), manifest.clone());
    let store = Arc::new(Mutex::new(blobs));
    let uploads: Arc<Mutex<Vec<u8>>> = Arc::default();
    let tweak: Box<Tweak> = Box::new(tweak);
    Server::start(move |req| {
        if let Some(r) = tweak(req) {
            return r;
        }
        let path = req.path().to_owned();
        if path == "/v2/" {
            return Reply::status(200);
        }
        if let Some(rest) = path.split("/manifests/").nth(1) {
            if req.method == "PUT" {
                let d = Digest::of_bytes(&req.body);
                store
                    .lock()
                    .unwrap()
                    .insert(d.to_string(), req.body.clone());
                return Reply::status(201).header("Docker-Content-Digest", d.as_str());
            }
            if rest == "1" || rest == image_digest_str(&manifest) {
                return Reply::new(200, manifest.clone())
                    .header("Content-Type", &mt)
                    .header("Docker-Content-Digest", &image_digest_str(&manifest));
            }
            return Reply::error(404, "MANIFEST_UNKNOWN", "manifest unknown");
        }
        if path.ends_with("/blobs/uploads/") && req.method == "POST" {
            uploads.lock().unwrap().clear();
            return Reply::status(202)
                .header("Location", "/v2/x/blobs/uploads/session-1?_state=abc");
        }
        if path.contains("/blobs/uploads/session-1") {
            let mut up = uploads.lock().unwrap();
            match req.method.as_str() {
                "PATCH" => {
                    up.extend_from_slice(&req.body);
                    // Some registries answer 201 to PATCH: the client must cope.
                    return Reply::status(201)
                        .header("Location", "/v2/x/blobs/uploads/session-1?_state=def")
                        .header("Range", &format!("0-{}", up.len().saturating_sub(1)));
                }
                "PUT" => {
                    up.extend_from_slice(&req.body);
                    let want = req.query("digest").unwrap_or_default();
                    let got = Digest::of_bytes(&up).to_string();
                    if want != got {
                        return Reply::error(400, "DIGEST_INVALID", "digest did not match");
                    }
                    store.lock().unwrap().insert(got.clone(), up.clone());
                    return Reply::status(201).header("Docker-Content-Digest", &got);
                }
                _ => {}
            }
        }
        if let Some(d) = path.split("/blobs/").nth(1) {
            let store = store.lock().unwrap();
            let Some(b) = store.get(d) else {
                return Reply::error(404, "BLOB_UNKNOWN", "blob unknown to registry");
            };
            if let Some(range) = req.header("range") {
                let from: usize = range
                    .trim_start_matches("bytes=")
                    .trim_end_matches('-')
                    .parse()
                    .unwrap();
                return Reply::new(206, b[from..].to_vec()).header(
                    "Content-Range",
                    &format!("bytes {from}-{}/{}", b.len() - 1, b.len()),
                );
            }
            return Reply::new(200, b.clone());
        }
        Reply::status(404)
    })
}

fn image_digest_str(manifest: &[u8]) -> String {
    Digest::of_bytes(manifest).to_string()
}

fn layer(image: &Image) -> Descriptor {
    image.parsed().layers[0].clone()
}

fn is_layer_get(req: &Request, d: &Descriptor) -> bool {
    req.method == "GET" && req.path().ends_with(&format!("/blobs/{}", d.digest))
}

async fn pull_err(
    server: &Server,
    _image: &Image,
) -> (Error, Arc<MemSinks>, Arc<Mutex<Vec<Event>>>) {
    let (client, events) = recording(&builder().build().unwrap());
    let sinks = Arc::new(MemSinks::default());
    let r = reference(&server.host(), "x", "1");
    let err = client.pull(&r, None, Arc::clone(&sinks)).await.unwrap_err();
    (err, sinks, events)
}

#[tokio::test]
async fn a_blob_with_the_wrong_digest_is_never_committed() {
    let image = Image::new(20, &[10_000]);
    let l = layer(&image);
    let server = serve(&image, move |req| {
        is_layer_get(req, &l).then(|| Reply::new(200, vec![7u8; usize::try_from(l.size).unwrap()]))
    });
    let (err, sinks, _) = pull_err(&server, &image).await;
    let text = err.to_string();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{text}");
    assert!(text.contains(layer(&image).digest.as_str()), "{text}");
    assert!(
        !sinks
            .committed
            .lock()
            .unwrap()
            .contains_key(&layer(&image).digest)
    );
}

#[tokio::test]
async fn short_and_long_bodies_are_size_errors() {
    let image = Image::new(21, &[10_000]);
    let l = layer(&image);
    let blob = image.blobs()[1].1.clone();
    let short = blob[..blob.len() - 10].to_vec();
    let server = serve(&image, move |req| {
        is_layer_get(req, &l).then(|| Reply::new(200, short.clone()))
    });
    let (err, sinks, _) = pull_err(&server, &image).await;
    assert!(matches!(err, Error::SizeMismatch { .. }), "{err}");
    assert!(err.to_string().contains("size mismatch"), "{err}");
    assert!(
        !sinks
            .committed
            .lock()
            .unwrap()
            .contains_key(&layer(&image).digest)
    );

    let l = layer(&image);
    let mut long = blob.clone();
    long.extend_from_slice(b"trailing garbage");
    let server = serve(&image, move |req| {
        is_layer_get(req, &l).then(|| Reply::new(200, long.clone()))
    });
    let (err, sinks, _) = pull_err(&server, &image).await;
    assert!(matches!(err, Error::SizeMismatch { .. }), "{err}");
    assert!(
        !sinks
            .committed
            .lock()
            .unwrap()
            .contains_key(&layer(&image).digest)
    );

    // Long without a Content-Length up front (chunked): cut at the size.
    let l = layer(&image);
    let mut chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    let mut body = blob.clone();
    body.extend_from_slice(&[1u8; 4096]);
    chunked.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
    chunked.extend_from_slice(&body);
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    let server = serve(&image, move |req| {
        is_layer_get(req, &l).then(|| Reply::Raw(chunked.clone()))
    });
    let (err, _, _) = pull_err(&server, &image).await;
    assert!(err.to_string().contains("or more"), "{err}");
}

#[tokio::test]
async fn a_connection_cut_every_time_gives_up_after_the_retries() {
    let image = Image::new(22, &[50_000]);
    let l = layer(&image);
    let blob = image.blobs()[1].1.clone();
    let server = serve(&image, move |req| {
        is_layer_get(req, &l).then(|| Reply::Cut {
            status: 200,
            headers: vec![],
            declared: blob.len() as u64,
            body: blob[..1000].to_vec(),
        })
    });
    let (err, sinks, events) = pull_err(&server, &image).await;
    assert!(matches!(err, Error::Connect { .. }), "{err}");
    assert!(err.to_string().contains(&server.host()), "{err}");
    let cuts = count(
        &events,
        |e| matches!(e, Event::Retried { reason, .. } if reason.contains("cut")),
    );
    assert_eq!(cuts, quick_retry().max_retries as usize);
    assert!(
        !sinks
            .committed
            .lock()
            .unwrap()
            .contains_key(&layer(&image).digest)
    );
}

#[tokio::test]
async fn a_cut_transfer_resumes_from_where_it_stopped() {
    let image = Image::new(23, &[50_000]);
    let l = layer(&image);
    let blob = image.blobs()[1].1.clone();
    let served = Arc::new(AtomicUsize::new(0));
    let s2 = Arc::clone(&served);
    let server = serve(&image, move |req| {
        if is_layer_get(req, &l) && s2.fetch_add(1, Ordering::SeqCst) == 0 {
            return Some(Reply::Cut {
                status: 200,
                headers: vec![],
                declared: blob.len() as u64,
                body: blob[..20_000].to_vec(),
            });
        }
        None
    });
    let client = builder().build().unwrap();
    pull_and_check(&client, &reference(&server.host(), "x", "1"), &image).await;
    let ranges: Vec<String> = server
        .requests()
        .iter()
        .filter_map(|r| r.header("range").map(str::to_owned))
        .collect();
    assert_eq!(ranges, ["bytes=20000-"]);
}

#[tokio::test]
async fn a_huge_manifest_is_refused_before_it_is_read() {
    let image = Image::new(24, &[10]);
    let server = serve(&image, |req| {
        req.path().contains("/manifests/").then(|| Reply::Cut {
            status: 200,
            headers: vec![(
                "Content-Type".into(),
                "application/vnd.oci.image.manifest.v1+json".into(),
            )],
            declared: 100 << 20,
            body: vec![b' '; 1000],
        })
    });
    let (err, _, _) = pull_err(&server, &image).await;
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    assert!(err.to_string().contains("104857600"), "{err}");

    // Without a length up front: stopped at the limit.
    let mut raw = b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..5 {
        raw.extend_from_slice(format!("{:x}\r\n", 1 << 20).as_bytes());
        raw.extend_from_slice(&vec![b' '; 1 << 20]);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    let server = serve(&image, move |req| {
        req.path()
            .contains("/manifests/")
            .then(|| Reply::Raw(raw.clone()))
    });
    let (err, _, _) = pull_err(&server, &image).await;
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
}

#[tokio::test]
async fn a_redirect_to_another_host_never_receives_the_token() {
    let image = Image::new(25, &[30_000]);
    let blob = image.blobs()[1].1.clone();
    let storage = Arc::new(Server::start(move |_req| Reply::new(200, blob.clone())));
    let storage_url = storage.url();
    let l = layer(&image);
    let realm = Arc::new(Mutex::new(String::new()));
    let realm2 = Arc::clone(&realm);
    let server = serve(&image, move |req| {
        if req.path() == "/token" {
            return Some(Reply::new(
                200,
                r#"{"token":"secret-token","expires_in":300}"#,
            ));
        }
        if req.header("authorization") != Some("Bearer secret-token") {
            let challenge = format!(
                r#"Bearer realm="{}",service="hostile""#,
                realm2.lock().unwrap()
            );
            return Some(
                Reply::error(401, "UNAUTHORIZED", "auth required")
                    .header("WWW-Authenticate", &challenge),
            );
        }
        is_layer_get(req, &l).then(|| {
            Reply::status(307).header(
                "Location",
                &format!("{storage_url}/bucket/blob?signature=s3"),
            )
        })
    });
    *realm.lock().unwrap() = format!("{}/token", server.url());
    let client = builder().build().unwrap();
    pull_and_check(&client, &reference(&server.host(), "x", "1"), &image).await;
    let at_storage = storage.requests();
    assert_eq!(at_storage.len(), 1);
    assert_eq!(at_storage[0].header("authorization"), None);
    assert!(at_storage[0].target.contains("signature=s3"));
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.path().contains("/blobs/")
                && r.header("authorization") == Some("Bearer secret-token"))
    );
}

#[tokio::test]
async fn too_many_requests_waits_retry_after_and_500_is_retried() {
    let image = Image::new(26, &[1000]);
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = Arc::clone(&n);
    let l = layer(&image);
    let server = serve(&image, move |req| {
        if req.path().contains("/manifests/") {
            return match n2.fetch_add(1, Ordering::SeqCst) {
                0 => Some(
                    Reply::error(429, "TOOMANYREQUESTS", "slow down").header("Retry-After", "1"),
                ),
                1 => Some(Reply::new(500, "oops")),
                _ => None,
            };
        }
        let _ = &l;
        None
    });
    let (client, events) = recording(&builder().build().unwrap());
    pull_and_check(&client, &reference(&server.host(), "x", "1"), &image).await;
    let retries: Vec<(String, Duration)> = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::Retried { reason, delay, .. } => Some((reason.clone(), *delay)),
            _ => None,
        })
        .collect();
    assert_eq!(retries.len(), 2, "{retries:?}");
    assert_eq!(retries[0], ("HTTP 429".to_owned(), Duration::from_secs(1)));
    assert_eq!(retries[1].0, "HTTP 500");

    // Always 503: the error after the retries carries the status.
    let server = serve(&image, |req| {
        req.path()
            .contains("/manifests/")
            .then(|| Reply::new(503, "down"))
    });
    let (err, _, _) = pull_err(&server, &image).await;
    assert_eq!(err.status(), Some(503), "{err}");
}

#[tokio::test]
async fn a_token_endpoint_returning_garbage_is_an_auth_error() {
    let image = Image::new(27, &[10]);
    for (body, status, expect) in [
        ("<html>not json</html>", 200, "not a token response"),
        (r#"{"token":""}"#, 200, "no token"),
        ("<html>boom</html>", 500, "HTTP 500"),
        (r#"{"token":"a b"}"#, 200, "spaces"),
    ] {
        let realm = Arc::new(Mutex::new(String::new()));
        let realm2 = Arc::clone(&realm);
        let server = serve(&image, move |req| {
            if req.path() == "/token" {
                return Some(Reply::new(status, body));
            }
            let challenge = format!(
                r#"Bearer realm="{}",service="hostile""#,
                realm2.lock().unwrap()
            );
            Some(Reply::status(401).header("WWW-Authenticate", &challenge))
        });
        *realm.lock().unwrap() = format!("{}/token", server.url());
        let (err, _, _) = pull_err(&server, &image).await;
        let text = err.to_string();
        assert!(matches!(err, Error::Auth { .. }), "{text}");
        assert!(
            text.contains(expect) && text.contains("/token"),
            "{expect}: {text}"
        );
    }
}

#[tokio::test]
async fn a_401_challenge_with_a_scope_gets_a_token_and_a_retry() {
    let image = Image::new(28, &[10]);
    let realm = Arc::new(Mutex::new(String::new()));
    let realm2 = Arc::clone(&realm);
    let server = serve(&image, move |req| {
        if req.path() == "/token" {
            let scopes = req.query_all("scope");
            let ok = scopes.iter().any(|s| s == "repository(plugin):x:pull");
            return Some(if ok {
                Reply::new(200, r#"{"access_token":"plugin-token"}"#)
            } else {
                Reply::new(200, r#"{"access_token":"weak-token"}"#)
            });
        }
        if req.path() == "/v2/" {
            return Some(Reply::status(200)); // no challenge up front
        }
        if req.header("authorization") != Some("Bearer plugin-token") {
            let challenge = format!(
                r#"Bearer realm="{}",service="hostile",scope="repository(plugin):x:pull""#,
                realm2.lock().unwrap()
            );
            return Some(
                Reply::error(401, "UNAUTHORIZED", "plugin scope needed")
                    .header("WWW-Authenticate", &challenge),
            );
        }
        None
    });
    *realm.lock().unwrap() = format!("{}/token", server.url());
    let client = builder().build().unwrap();
    let r = reference(&server.host(), "x", "1");
    pull_and_check(&client, &r, &image).await;
    // The challenge's scope is remembered: a second pull asks no new token.
    let tokens = |s: &Server| s.requests().iter().filter(|q| q.path() == "/token").count();
    let before = tokens(&server);
    pull_and_check(&client, &r, &image).await;
    assert_eq!(tokens(&server), before);
}

#[tokio::test]
async fn an_upload_sent_to_another_host_gets_no_credentials() {
    // The other host answers 401 with its own challenge: the client must
    // neither send the registry's token there nor fetch one from its realm.
    let elsewhere = Arc::new(Server::start(|req| {
        if req.path() == "/token" {
            return Reply::new(200, r#"{"token":"stolen"}"#);
        }
        Reply::status(401).header(
            "WWW-Authenticate",
            r#"Bearer realm="http://127.0.0.1:1/token""#,
        )
    }));
    let other_url = elsewhere.url();
    let image = Image::new(35, &[1000]);
    let realm = Arc::new(Mutex::new(String::new()));
    let realm2 = Arc::clone(&realm);
    let server = serve(&image, move |req| {
        if req.path() == "/token" {
            return Some(Reply::new(
                200,
                r#"{"token":"secret-token","expires_in":18446744073709551615}"#,
            ));
        }
        if req.header("authorization") != Some("Bearer secret-token") {
            let challenge = format!(
                r#"Bearer realm="{}",service="hostile""#,
                realm2.lock().unwrap()
            );
            return Some(Reply::status(401).header("WWW-Authenticate", &challenge));
        }
        (req.method == "POST" && req.path().ends_with("/blobs/uploads/"))
            .then(|| Reply::status(202).header("Location", &format!("{other_url}/upload/1")))
    });
    *realm.lock().unwrap() = format!("{}/token", server.url());
    let client = builder().build().unwrap();
    let (d, bytes) = Image::new(36, &[500]).blobs()[1].clone();
    let r = Reference::parse(&format!("{}/x", server.host())).unwrap();
    // A huge expires_in is clamped, not an overflow.
    let err = client
        .push_blob(&r, &d, &BytesSource(bytes.into()), None)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(401), "{err}");
    for q in elsewhere.requests() {
        assert_eq!(q.header("authorization"), None, "{q:?}");
        assert_ne!(q.path(), "/token");
    }
    assert!(!elsewhere.requests().is_empty());
}

#[tokio::test]
async fn an_index_without_this_platform_names_what_it_has() {
    let image = Image::new(29, &[10]);
    let mut d = Descriptor::of_bytes(image.media_type.clone(), &image.manifest);
    d.platform = Some(Platform::new("windows", "amd64", None));
    let mut d2 = d.clone();
    d2.platform = Some(Platform::new("linux", "s390x", None));
    let index = Index::oci(vec![d, d2]).to_vec();
    let server = serve(&image, move |req| {
        (req.path().ends_with("/manifests/1")).then(|| {
            Reply::new(200, index.clone())
                .header("Content-Type", "application/vnd.oci.image.index.v1+json")
        })
    });
    let (err, _, _) = pull_err(&server, &image).await;
    let text = err.to_string();
    assert!(
        text.contains("windows/amd64") && text.contains("linux/s390x"),
        "{text}"
    );

    // Asking for a platform the index has works, and the child is verified.
    let client = builder().build().unwrap();
    let r = reference(&server.host(), "x", "1");
    let got = client
        .resolve(&r, Some(&Platform::new("linux", "s390x", None)))
        .await
        .unwrap();
    assert_eq!(got.descriptor.digest, image.digest());
    assert!(got.index.is_some());
}

#[tokio::test]
async fn an_index_child_that_lies_about_its_size_is_refused() {
    let image = Image::new(30, &[10]);
    let mut d = Descriptor::of_bytes(image.media_type.clone(), &image.manifest);
    d.size += 1;
    d.platform = Some(Platform::host());
    let index = Index::oci(vec![d]).to_vec();
    let server = serve(&image, move |req| {
        (req.path().ends_with("/manifests/1")).then(|| {
            Reply::new(200, index.clone())
                .header("Content-Type", "application/vnd.oci.image.index.v1+json")
        })
    });
    let (err, _, _) = pull_err(&server, &image).await;
    assert!(matches!(err, Error::SizeMismatch { .. }), "{err}");
}

#[tokio::test]
async fn a_manifest_whose_digest_header_lies_is_refused() {
    let image = Image::new(31, &[10]);
    let wrong = Digest::of_bytes(b"something else").to_string();
    let manifest = image.manifest.clone();
    let mt = image.media_type.to_string();
    let server = serve(&image, move |req| {
        req.path().contains("/manifests/").then(|| {
            Reply::new(200, manifest.clone())
                .header("Content-Type", &mt)
                .header("Docker-Content-Digest", &wrong)
        })
    });
    let (err, _, _) = pull_err(&server, &image).await;
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");

    // Content-Type and the document's own mediaType disagree.
    let manifest = image.manifest.clone();
    let server = serve(&image, move |req| {
        req.path().contains("/manifests/").then(|| {
            Reply::new(200, manifest.clone())
                .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        })
    });
    let (err, _, _) = pull_err(&server, &image).await;
    assert!(err.to_string().contains("media"), "{err}");
}

#[tokio::test]
async fn a_registry_refusing_the_index_types_gets_the_narrow_accept() {
    let image = Image::new(32, &[10]);
    let server = serve(&image, |req| {
        (req.path().contains("/manifests/")
            && req.header("accept").is_some_and(|a| a.contains("index")))
        .then(|| Reply::status(406))
    });
    let client = builder().build().unwrap();
    pull_and_check(&client, &reference(&server.host(), "x", "1"), &image).await;
}

#[tokio::test]
async fn chunked_upload_copes_with_201_to_patch() {
    let image = Image::new(33, &[100_000]);
    let server = serve(&image, |_| None);
    let client = builder().chunk_size(Some(30_000)).build().unwrap();
    let other = Image::new(34, &[100_000]);
    let (d, bytes) = other.blobs()[1].clone();
    let r = Reference::parse(&format!("{}/x", server.host())).unwrap();
    client
        .push_blob(&r, &d, &BytesSource(bytes.clone().into()), None)
        .await
        .unwrap();
    let patches: Vec<Request> = server
        .requests()
        .into_iter()
        .filter(|q| q.method == "PATCH")
        .collect();
    assert_eq!(patches.len(), 4);
    assert_eq!(patches[0].header("content-range"), Some("0-29999"));
    assert!(
        patches[1].target.contains("_state=def"),
        "the Location of each answer is followed"
    );
    let mut sink = Vec::new();
    client.fetch_blob(&r, &d, &mut sink, None).await.unwrap();
    assert_eq!(sink, bytes);

    // A blob whose bytes do not match its descriptor is refused by the registry.
    let mut lie = d.clone();
    lie.digest = Digest::of_bytes(b"not these bytes");
    let err = client
        .push_blob(&r, &lie, &BytesSource(bytes.into()), None)
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some(pluginctl_registry::ErrorCode::DigestInvalid),
        "{err}"
    );
}

#[tokio::test]
async fn a_refused_connection_here_fails_at_once_and_dns_after_one_retry() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let retried = |events: &Arc<Mutex<Vec<Event>>>| {
        events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| matches!(e, Event::Retried { .. }))
            .count()
    };
    for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}")] {
        let (client, events) = recording(&builder().build().unwrap());
        let err = client
            .resolve(&reference(&host, "x", "1"), None)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("refused"), "{host}: {err}");
        assert_eq!(retried(&events), 0, "{host}: {err}");
    }
    // A name that cannot resolve (.invalid never does): one retry.
    let (client, events) = recording(&builder().build().unwrap());
    let err = client
        .resolve(&reference("registry.invalid:5000", "x", "1"), None)
        .await
        .unwrap_err();
    assert_eq!(retried(&events), 1, "{err}");
}
