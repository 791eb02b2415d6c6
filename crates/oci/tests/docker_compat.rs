//! Golden tests on the bytes Docker 20.10 really wrote for a plugin
//! (`testdata/docker-20.10`, recorded from dockerd and the CNCF registry).

use std::path::PathBuf;

use pluginctl_oci::{
    Digest, Document, Manifest, MediaType, Plugin, PluginConfig, PluginPrivilege, json,
};

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/docker-20.10")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const MANIFEST_DIGEST: &str =
    "sha256:b1ff38afb92310b075b9e749428df6207ba2a51f6439b36826100baa3d110966";

#[test]
fn schema2_plugin_manifest_round_trips_byte_for_byte() {
    let bytes = fixture("plugin-manifest.json");
    assert_eq!(Digest::of_bytes(&bytes).as_str(), MANIFEST_DIGEST);
    let m = Manifest::parse(Some(&MediaType::DockerManifest), &bytes).unwrap();
    assert_eq!(m.config.media_type, MediaType::Plugin);
    assert_eq!(m.config.size, 899);
    assert_eq!(m.layers.len(), 1);
    assert_eq!(m.layers[0].media_type, MediaType::DockerLayerGzip);
    assert_eq!(m.layers[0].size, 1_435_056);
    assert_eq!(
        String::from_utf8(m.to_vec()).unwrap(),
        String::from_utf8(bytes).unwrap()
    );
    // skopeo shows the same bytes.
    assert_eq!(fixture("plugin-manifest.skopeo-raw.json"), m.to_vec());
}

#[test]
fn oci_variant_round_trips_and_points_at_the_same_blobs() {
    let bytes = fixture("plugin-manifest.oci-variant.installable.json");
    let oci = Manifest::parse(Some(&MediaType::OciManifest), &bytes).unwrap();
    // This file was written by hand for the test, with a final newline.
    assert_eq!(oci.to_vec(), bytes.strip_suffix(b"\n").unwrap());
    let docker = Manifest::parse(None, &fixture("plugin-manifest.json")).unwrap();
    assert_eq!(oci.config, docker.config);
    assert_eq!(oci.layers[0].digest, docker.layers[0].digest);
    assert_eq!(oci.layers[0].media_type, MediaType::OciLayerGzip);
    // The registry serves the Docker manifest with its own Content-Type; a
    // client that trusted the wrong one must be stopped.
    let err = Document::parse(
        Some(&MediaType::OciManifest),
        &fixture("plugin-manifest.json"),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "document has media type application/vnd.docker.distribution.manifest.v2+json but its descriptor says application/vnd.oci.image.manifest.v1+json"
    );
}

#[test]
fn config_blob_round_trips_byte_for_byte() {
    let bytes = fixture("plugin-config-blob.json");
    let manifest = Manifest::parse(None, &fixture("plugin-manifest.json")).unwrap();
    assert_eq!(Digest::of_bytes(&bytes), manifest.config.digest);
    let config = PluginConfig::from_slice(&bytes).unwrap();
    assert_eq!(config.docker_version, "20.10.24+dfsg1");
    assert_eq!(config.types()[0].to_string(), "docker.volumedriver/1.0");
    assert_eq!(config.linux.devices, None);
    assert_eq!(config.args.value, Some(vec![]));
    assert_eq!(
        String::from_utf8(config.to_vec()).unwrap(),
        String::from_utf8(bytes).unwrap()
    );
}

#[test]
fn context_config_becomes_the_blob_docker_pushed() {
    // The author's lowercase config.json, plus what `docker plugin create`
    // adds (DockerVersion and rootfs), must give Docker's exact blob.
    let context = PluginConfig::from_slice(&fixture("plugin-context-config.json")).unwrap();
    let blob = PluginConfig::from_slice(&fixture("plugin-config-blob.json")).unwrap();
    assert_eq!(
        context.description,
        "sample volume plugin for pluginctl peer tests"
    );
    assert_eq!(context.network.kind, "host");
    assert_eq!(
        context.mounts.as_ref().unwrap()[0].source.as_deref(),
        Some("/tmp")
    );
    assert_eq!(context.rootfs, None);
    let mut built = context;
    built.docker_version.clone_from(&blob.docker_version);
    built.rootfs.clone_from(&blob.rootfs);
    assert_eq!(built, blob);
    assert_eq!(
        String::from_utf8(built.to_vec()).unwrap(),
        String::from_utf8(fixture("plugin-config-blob.json")).unwrap()
    );
}

#[test]
fn inspect_output_round_trips_byte_for_byte() {
    for name in [
        "plugin-inspect-after-create.json",
        "plugin-inspect-after-install.json",
    ] {
        let bytes = fixture(name);
        let plugins: Vec<Plugin> = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(plugins.len(), 1);
        let p = &plugins[0];
        assert_eq!(p.id.len(), 64, "{name}");
        assert_eq!(p.settings.env.as_deref(), Some(&["DEBUG=0".to_owned()][..]));
        let mut out = json::to_vec_pretty(&plugins, "    ");
        out.push(b'\n');
        assert_eq!(
            String::from_utf8(out).unwrap(),
            String::from_utf8(bytes).unwrap(),
            "{name}"
        );
    }
}

#[test]
fn privileges_api_answer_parses() {
    let privileges: Vec<PluginPrivilege> =
        serde_json::from_slice(&fixture("plugin-privileges-api.json")).unwrap();
    let summary: Vec<String> = privileges
        .iter()
        .map(|p| format!("{}={}", p.name, p.value.join(",")))
        .collect();
    assert_eq!(
        summary,
        ["network=host", "mount=/tmp", "capabilities=CAP_SYS_ADMIN"]
    );
    assert_eq!(privileges[1].description, "host path to mount");
}

#[test]
fn dockerd_record_holds_the_same_config() {
    #[derive(serde::Deserialize)]
    struct Record {
        plugin: Plugin,
    }
    let record: Record = serde_json::from_slice(&fixture(
        "dockerd-datadir-plugins-ID-config.after-install.json",
    ))
    .unwrap();
    let blob = PluginConfig::from_slice(&fixture("plugin-config-blob.json")).unwrap();
    assert_eq!(record.plugin.config, blob);
}
