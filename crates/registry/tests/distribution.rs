//! Integration tier: the client against the real CNCF distribution registry
//! (Debian `docker-registry`), started per test on 127.0.0.1 and stopped by PID.

mod common;

use std::sync::Arc;

use common::*;
use pluginctl_oci::{Descriptor, Digester, MediaType};
use pluginctl_registry::{BytesSource, Credentials, ErrorCode, Event, Pushed, StaticCredentials};
use pluginctl_testkit::image::Image;
use pluginctl_testkit::registry::{
    Auth, CutProxy, PASSWORD, REFRESH_TOKEN, Registry, TokenServer, USER,
};

#[tokio::test]
async fn push_then_pull_round_trip_and_second_push_skips_everything() {
    let reg = Registry::plain();
    let image = Image::new(1, &[200_000, 50_000, 1_000]);
    let r = reference(&reg.host, "test/sample", "1.0");
    let (client, events) = recording(&builder().build().unwrap());
    let digest = push(&client, &r, &image).await;
    assert_eq!(digest, image.digest());
    assert_eq!(count(&events, |e| matches!(e, Event::Done { .. })), 4);

    pull_and_check(&client, &r, &image).await;
    let head = client.head_manifest(&r).await.unwrap().unwrap();
    assert_eq!(head.digest, image.digest());
    assert_eq!(head.size, image.manifest.len() as u64);
    assert_eq!(head.media_type, image.media_type);

    // By digest, too.
    let by_digest = r.with_digest(image.digest());
    pull_and_check(&client, &by_digest, &image).await;

    events.lock().unwrap().clear();
    push(&client, &r, &image).await;
    assert_eq!(count(&events, |e| matches!(e, Event::Exists { .. })), 4);
    assert_eq!(count(&events, |e| matches!(e, Event::Started { .. })), 0);
}

#[tokio::test]
async fn registry_errors_carry_the_envelope_and_the_reference() {
    let reg = Registry::plain();
    let client = builder().build().unwrap();
    let r = reference(&reg.host, "test/absent", "nope");
    let err = client.resolve(&r, None).await.unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(
            err.code(),
            Some(ErrorCode::NameUnknown | ErrorCode::ManifestUnknown)
        ),
        "{text}"
    );
    assert!(
        text.contains(&format!("{}/test/absent:nope", reg.host)),
        "{text}"
    );
    assert!(text.contains("unknown"), "{text}");
    assert!(client.head_manifest(&r).await.unwrap().is_none());

    let image = Image::new(2, &[10]);
    let blob = &image.blobs()[1].0;
    assert_eq!(client.blob_exists(&r, &blob.digest).await.unwrap(), None);
}

#[tokio::test]
async fn chunked_upload_round_trips() {
    let reg = Registry::plain();
    // Through a proxy that counts PATCH requests on their way in.
    let proxy = CutProxy::start(&reg.host, u64::MAX, 0);
    let client = builder().chunk_size(Some(64 << 10)).build().unwrap();
    let (client, events) = recording(&client);
    let image = Image::new(3, &[300_000, 10]);
    let r = reference(&proxy.host, "test/chunked", "v1");
    push(&client, &r, &image).await;
    assert!(
        proxy.patches() >= 2,
        "a 300 kB blob in 64 KiB chunks goes up in several PATCHes, saw {}",
        proxy.patches()
    );
    let big = image.parsed().layers[0].clone();
    let upload_progress = count(
        &events,
        |e| matches!(e, Event::Bytes { digest, done, .. } if *digest == big.digest && *done == big.size),
    );
    assert_eq!(upload_progress, 1, "the upload reports its last byte");
    pull_and_check(&client, &r, &image).await;
    assert_eq!(
        client.blob_exists(&r, &big.digest).await.unwrap(),
        Some(big.size)
    );
}

#[tokio::test]
async fn cross_repository_mount_moves_no_bytes() {
    let reg = Registry::plain();
    let image = Image::new(4, &[100_000]);
    let client = builder().build().unwrap();
    let a = reference(&reg.host, "team/a", "1");
    push(&client, &a, &image).await;
    let (client, events) = recording(&client);
    let b = reference(&reg.host, "team/b", "1");
    let digest = client
        .push(
            &b,
            &image.media_type,
            &image.manifest,
            &sources(&image),
            Some("team/a"),
        )
        .await
        .unwrap();
    assert_eq!(digest, image.digest());
    assert_eq!(
        count(
            &events,
            |e| matches!(e, Event::Mounted { from, .. } if from == "team/a")
        ),
        2
    );
    assert_eq!(count(&events, |e| matches!(e, Event::Started { .. })), 0);
    pull_and_check(&client, &b, &image).await;

    // A blob the source repository lacks is uploaded after the mount is refused.
    let other = Image::new(5, &[1000]);
    let layer = other.blobs()[1].clone();
    let pushed = client
        .push_blob(
            &b,
            &layer.0,
            &BytesSource(layer.1.clone().into()),
            Some("team/a"),
        )
        .await
        .unwrap();
    assert_eq!(pushed, Pushed::Uploaded);
}

#[tokio::test]
async fn a_cut_transfer_resumes_with_range_and_verifies() {
    let reg = Registry::plain();
    let image = Image::new(6, &[2_000_000]);
    let client = builder().build().unwrap();
    let direct = reference(&reg.host, "test/cut", "1");
    push(&client, &direct, &image).await;

    // Cut the first two connections after 300 KiB from the registry.
    let proxy = CutProxy::start(&reg.host, 300 << 10, 2);
    let (client, events) = recording(&builder().build().unwrap());
    let via = reference(&proxy.host, "test/cut", "1");
    pull_and_check(&client, &via, &image).await;
    assert_eq!(proxy.cuts(), 2);
    let retried = count(
        &events,
        |e| matches!(e, Event::Retried { reason, .. } if reason.contains("transfer cut")),
    );
    assert!(retried >= 1, "{:?}", events.lock().unwrap());

    // A caller's own resume: half the blob is already in the sink.
    let (desc, bytes) = image.blobs()[1].clone();
    let half = bytes.len() / 2;
    let mut digester = Digester::new(desc.digest.algorithm());
    digester.update(&bytes[..half]);
    let mut sink = bytes[..half].to_vec();
    client
        .fetch_blob(&direct, &desc, &mut sink, Some(digester))
        .await
        .unwrap();
    assert_eq!(sink, bytes);

    // A wrong prefix is caught by the digest, not handed over as verified.
    let mut bad = Digester::new(desc.digest.algorithm());
    bad.update(&vec![0u8; half]);
    let mut sink = vec![0u8; half];
    let err = client
        .fetch_blob(&direct, &desc, &mut sink, Some(bad))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("digest mismatch"), "{err}");
}

#[tokio::test]
async fn htpasswd_behind_tls() {
    let reg = Registry::start(&Auth::Htpasswd, true);
    let image = Image::new(7, &[50_000]);
    let r = reference(&reg.host, "secure/app", "1");

    // Full verification (not Docker's loopback exemption) with the CA given.
    let creds = StaticCredentials::new().with(
        &reg.host,
        Credentials::Basic {
            username: USER.into(),
            password: PASSWORD.into(),
        },
    );
    let client = builder()
        .loopback_insecure(false)
        .ca_certificate_pem(&reg.ca_pem())
        .credentials(creds)
        .build()
        .unwrap();
    push(&client, &r, &image).await;
    pull_and_check(&client, &r, &image).await;

    // Without the CA: a TLS error naming the host.
    let untrusting = builder().loopback_insecure(false).build().unwrap();
    let err = untrusting.resolve(&r, None).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("TLS") && text.contains(&reg.host), "{text}");

    // Without credentials: an auth error saying none is configured.
    let anonymous = builder().ca_certificate_pem(&reg.ca_pem()).build().unwrap();
    let err = anonymous.resolve(&r, None).await.unwrap_err();
    assert!(
        matches!(err, pluginctl_registry::Error::Auth { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("none is configured"), "{err}");

    // Wrong password: unauthorized from the registry.
    let wrong = builder()
        .ca_certificate_pem(&reg.ca_pem())
        .credentials(StaticCredentials::new().with(
            &reg.host,
            Credentials::Basic {
                username: USER.into(),
                password: "wrong".into(),
            },
        ))
        .build()
        .unwrap();
    let err = wrong.resolve(&r, None).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Unauthorized), "{err}");
}

#[tokio::test]
async fn token_auth_with_a_signed_jwt() {
    let tokens = TokenServer::start();
    let reg = Registry::start(&Auth::Token(tokens.config.clone()), false);
    let image = Image::new(8, &[40_000, 2_000]);
    let r = reference(&reg.host, "tok/app", "1");
    let basic = Credentials::Basic {
        username: USER.into(),
        password: PASSWORD.into(),
    };
    let client = builder()
        .credentials(StaticCredentials::new().with(&reg.host, basic))
        .build()
        .unwrap();
    push(&client, &r, &image).await;
    pull_and_check(&client, &r, &image).await;
    assert!(tokens.issued() >= 1);
    let asked: Vec<String> = tokens
        .requests()
        .iter()
        .flat_map(|q| q.query_all("scope"))
        .collect();
    assert!(
        asked.iter().any(|s| s == "repository:tok/app:pull,push"),
        "{asked:?}"
    );

    // Tokens are cached per scope: another pull asks for none.
    let before = tokens.issued();
    pull_and_check(&client, &r, &image).await;
    assert_eq!(tokens.issued(), before);

    // An identity (refresh) token goes through the OAuth2 POST grant.
    let refreshing = builder()
        .credentials(
            StaticCredentials::new()
                .with(&reg.host, Credentials::IdentityToken(REFRESH_TOKEN.into())),
        )
        .build()
        .unwrap();
    pull_and_check(&refreshing, &r, &image).await;
    assert!(tokens.requests().iter().any(|q| q.method == "POST"));

    // Anonymous callers get pull only: pulling works, pushing is refused.
    let anonymous = builder().build().unwrap();
    pull_and_check(&anonymous, &r, &image).await;
    let other = Image::new(9, &[100]);
    let err = anonymous
        .push(
            &reference(&reg.host, "tok/app", "2"),
            &other.media_type,
            &other.manifest,
            &sources(&other),
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.code(),
            Some(ErrorCode::Unauthorized | ErrorCode::Denied)
        ),
        "{err}"
    );

    // The plugin scope class is accepted end to end.
    let plugin_client = builder()
        .plugin_scope_class(true)
        .credentials(StaticCredentials::new().with(
            &reg.host,
            Credentials::Basic {
                username: USER.into(),
                password: PASSWORD.into(),
            },
        ))
        .build()
        .unwrap();
    pull_and_check(&plugin_client, &r, &image).await;
    assert!(
        tokens
            .requests()
            .iter()
            .flat_map(|q| q.query_all("scope"))
            .any(|s| s == "repository(plugin):tok/app:pull")
    );
}

#[tokio::test]
async fn a_manifest_pushed_by_digest_and_a_config_blob_fetch() {
    let reg = Registry::plain();
    let image = Image::new(10, &[5_000]);
    let client = builder().build().unwrap();
    let repo = reference(&reg.host, "bydigest/app", "x").without_tag_or_digest();
    for (d, b) in image.blobs() {
        client
            .push_blob(&repo, &d, &BytesSource(b.into()), None)
            .await
            .unwrap();
    }
    let by_digest = repo.with_digest(image.digest());
    let digest = client
        .push_manifest(&by_digest, &image.media_type, &image.manifest)
        .await
        .unwrap();
    assert_eq!(digest, image.digest());
    let resolved = client.resolve(&by_digest, None).await.unwrap();
    let config = client
        .fetch_blob_bytes(&repo, &resolved.manifest.config, 1 << 20)
        .await
        .unwrap();
    assert_eq!(config, image.config);
    let err = client
        .fetch_blob_bytes(&repo, &resolved.manifest.config, 10)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("over the limit"), "{err}");

    // A blob absent from the registry: blob unknown, naming the digest.
    let ghost = Descriptor::of_bytes(MediaType::parse("application/octet-stream"), b"ghost");
    let mut sink = Vec::new();
    let err = client
        .fetch_blob(&repo, &ghost, &mut sink, None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains(ghost.digest.as_str()), "{err}");
    assert_eq!(err.code(), Some(ErrorCode::BlobUnknown), "{err}");
    let _ = Arc::new(());
}
