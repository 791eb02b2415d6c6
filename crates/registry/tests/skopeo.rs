//! Interop with skopeo (Debian `skopeo`) through the real distribution
//! registry: what skopeo pushes we pull and verify; what we push skopeo
//! reads back byte for byte.

mod common;

use std::collections::HashMap;
use std::process::Command;

use common::*;
use pluginctl_oci::{Digest, MediaType};
use pluginctl_testkit::image::{Image, read_dir_transport, read_oci_layout, write_oci_layout};
use pluginctl_testkit::registry::Registry;

fn skopeo(args: &[&str]) -> Vec<u8> {
    let out = Command::new("skopeo")
        .arg("--insecure-policy")
        .args(args)
        .output()
        .expect("skopeo is installed by `cargo xtask test`");
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn by_digest(blobs: Vec<(pluginctl_oci::Descriptor, Vec<u8>)>) -> HashMap<Digest, Vec<u8>> {
    blobs.into_iter().map(|(d, b)| (d.digest, b)).collect()
}

#[tokio::test]
async fn what_skopeo_pushes_we_pull_and_verify() {
    let reg = Registry::plain();
    let dir = tempfile::tempdir().unwrap();
    // skopeo's OCI layout reader only lists OCI manifests.
    let image = Image::new_oci(40, &[300_000, 20_000]);
    write_oci_layout(dir.path(), "v1", &image);
    let src = format!("oci:{}:v1", dir.path().display());
    let dst = format!("docker://{}/interop/from-skopeo:v1", reg.host);
    skopeo(&["copy", "--dest-tls-verify=false", &src, &dst]);

    let raw = skopeo(&["inspect", "--raw", "--tls-verify=false", &dst]);
    let client = builder().build().unwrap();
    let r = reference(&reg.host, "interop/from-skopeo", "v1");
    let resolved = client.resolve(&r, None).await.unwrap();
    assert_eq!(
        resolved.bytes, raw,
        "the manifest we resolve is the one skopeo stored"
    );
    assert_eq!(resolved.descriptor.digest, Digest::of_bytes(&raw));
    pull_and_check(&client, &r, &image).await;
}

#[tokio::test]
async fn what_we_push_skopeo_reads_back_identically() {
    let reg = Registry::plain();
    let image = Image::new(41, &[250_000, 1_000]);
    let client = builder().build().unwrap();
    let r = reference(&reg.host, "interop/from-us", "v1");
    push(&client, &r, &image).await;
    let src = format!("docker://{}/interop/from-us:v1", reg.host);
    let raw = skopeo(&["inspect", "--raw", "--tls-verify=false", &src]);
    assert_eq!(raw, image.manifest);

    // The dir: transport keeps manifests and blobs exactly as they are.
    let out = tempfile::tempdir().unwrap();
    let dst = format!("dir:{}", out.path().display());
    skopeo(&["copy", "--src-tls-verify=false", &src, &dst]);
    let (manifest, blobs) = read_dir_transport(out.path());
    assert_eq!(manifest, image.manifest);
    for (d, bytes) in image.blobs() {
        assert_eq!(
            blobs.get(d.digest.encoded()),
            Some(&bytes),
            "blob {} via skopeo",
            d.digest
        );
    }

    // And an OCI image through an OCI layout.
    let oci = Image::new_oci(42, &[10_000]);
    let or = reference(&reg.host, "interop/oci", "v1");
    push(&client, &or, &oci).await;
    let layout = tempfile::tempdir().unwrap();
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{}/interop/oci:v1", reg.host),
        &format!("oci:{}:v1", layout.path().display()),
    ]);
    let (m, _, blobs) = read_oci_layout(layout.path(), "v1");
    assert_eq!(m, oci.manifest);
    let got = by_digest(blobs);
    for (d, bytes) in oci.blobs() {
        assert_eq!(got.get(&d.digest), Some(&bytes), "blob {}", d.digest);
    }

    // A plugin (config type application/vnd.docker.plugin.v1+json) too.
    let plugin = Image::assemble(
        br#"{"Description":"x","Interface":{"Types":["docker.volumedriver/1.0"],"Socket":"p.sock"},"Entrypoint":["/p"]}"#.to_vec(),
        MediaType::parse("application/vnd.docker.plugin.v1+json"),
        image.layers[..1].to_vec(),
    );
    let pr = reference(&reg.host, "interop/plugin", "1.0");
    push(&client, &pr, &plugin).await;
    let raw = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}/interop/plugin:1.0", reg.host),
    ]);
    assert_eq!(raw, plugin.manifest);
}
