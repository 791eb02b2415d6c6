//! An interrupted layer download continues where it stopped (the prefix is
//! hashed again, the rest fetched with Range), and a prefix that does not
//! verify is thrown away rather than resumed.

use std::io::Write as _;
use std::path::Path;

use pluginctl_manager::oci::Digest;
use pluginctl_manager::registry::Client;
use pluginctl_manager::{CreateOptions, InstallOptions, Manager};
use pluginctl_testkit::http::{Server, serve_image};

fn context(dir: &Path) {
    std::fs::create_dir_all(dir.join("rootfs")).unwrap();
    std::fs::write(
        dir.join("rootfs/big"),
        pluginctl_testkit::pattern(7, 3 << 20),
    )
    .unwrap();
    std::fs::write(
        dir.join("config.json"),
        r#"{"interface":{"types":["docker.volumedriver/1.0"],"socket":"s.sock"}}"#,
    )
    .unwrap();
}

/// A registry serving one plugin's blobs, with Range.
fn serve(m: &Manager, record: &pluginctl_manager::Record) -> Server {
    let mut blobs = std::collections::HashMap::new();
    for d in record.roots() {
        blobs.insert(d.to_string(), m.content().read_all(&d, 64 << 20).unwrap());
    }
    let manifest = blobs[record.manifest.digest.as_str()].clone();
    serve_image(manifest, record.manifest.media_type.as_str(), blobs)
}

#[tokio::test]
async fn an_interrupted_download_resumes_and_a_bad_prefix_is_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path().join("ctx");
    context(&ctx);
    let src = Manager::open(&tmp.path().join("src")).unwrap();
    let created = src.create("p", &ctx, &CreateOptions::default()).unwrap();
    let server = serve(&src, &created);
    let layer = created.layers[0].clone();
    let bytes = src.content().read_all(&layer.digest, 64 << 20).unwrap();
    let half = bytes.len() / 2;
    let reference = format!("{}/p:1", server.host());
    let client = Client::builder().build().unwrap();

    // A first run that stopped halfway left this ingest.
    let root = tmp.path().join("root");
    let m = Manager::open(&root).unwrap();
    let mut w = m
        .content()
        .writer(&format!("pull-{}", layer.digest))
        .unwrap();
    w.write_all(&bytes[..half]).unwrap();
    w.flush().unwrap();
    drop(w);
    let r = m
        .install(&client, &reference, &InstallOptions::default(), |_| true)
        .await
        .unwrap();
    assert_eq!(r.layers[0].digest, layer.digest);
    let ranges: Vec<String> = server
        .requests()
        .iter()
        .filter_map(|q| q.header("range").map(str::to_owned))
        .collect();
    assert_eq!(ranges, [format!("bytes={half}-")]);
    assert_eq!(
        std::fs::read(m.lowers(&r).unwrap()[0].join("big")).unwrap(),
        pluginctl_testkit::pattern(7, 3 << 20)
    );

    // A leftover whose bytes are wrong: refused by the digest, dropped, and
    // the next install starts from zero and succeeds.
    let root2 = tmp.path().join("root2");
    let m2 = Manager::open(&root2).unwrap();
    let mut w = m2
        .content()
        .writer(&format!("pull-{}", layer.digest))
        .unwrap();
    w.write_all(&vec![0u8; half]).unwrap();
    w.flush().unwrap();
    drop(w);
    let err = m2
        .install(&client, &reference, &InstallOptions::default(), |_| true)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("digest mismatch"), "{err}");
    assert!(m2.list().unwrap().is_empty());
    let ok = m2
        .install(&client, &reference, &InstallOptions::default(), |_| true)
        .await
        .unwrap();
    assert_eq!(ok.layers[0].digest, layer.digest);
    assert!(m2.content().contains(&Digest::of_bytes(&bytes)).unwrap());
}
