//! What install and set refuse, through an in-process registry serving
//! hand-made plugins: a socket outside the plugin's socket directory, and
//! mount sources that are empty or relative; and what set does not ask
//! twice (a grant already given).

use std::collections::HashMap;
use std::path::Path;

use pluginctl_manager::oci::{Descriptor, Digest, Manifest, MediaType, PluginPrivilege};
use pluginctl_manager::registry::Client;
use pluginctl_manager::{InstallOptions, Manager, PLUGIN_CONFIG_TYPE};
use pluginctl_testkit::http::{Server, serve_image};

/// A registry holding one plugin: `config` and one small layer.
fn serve_plugin(config: &str) -> Server {
    let layer = pluginctl_testkit::layer("file bin/p \"x\" mode=755");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &layer).unwrap();
    let layer_gz = gz.finish().unwrap();
    let layer_desc = Descriptor::new(
        MediaType::DockerLayerGzip,
        Digest::of_bytes(&layer_gz),
        layer_gz.len() as u64,
    );
    let config = config.as_bytes().to_vec();
    let config_desc = Descriptor::new(
        MediaType::parse(PLUGIN_CONFIG_TYPE),
        Digest::of_bytes(&config),
        config.len() as u64,
    );
    let manifest = Manifest::docker(config_desc.clone(), vec![layer_desc.clone()]).to_vec();
    let mut blobs = HashMap::new();
    blobs.insert(config_desc.digest.to_string(), config);
    blobs.insert(layer_desc.digest.to_string(), layer_gz);
    serve_image(
        manifest,
        "application/vnd.docker.distribution.manifest.v2+json",
        blobs,
    )
}

fn plugin_dirs(root: &Path) -> usize {
    std::fs::read_dir(root.join("plugins")).map_or(0, Iterator::count)
}

#[tokio::test]
async fn install_refuses_a_socket_outside_the_plugin() {
    let tmp = tempfile::tempdir().unwrap();
    let m = Manager::open(&tmp.path().join("root")).unwrap();
    let client = Client::builder().build().unwrap();
    for socket in ["../../esc.sock", "sub/p.sock", "..", ""] {
        let config = serde_json::json!({
            "Interface": {"Types": ["docker.volumedriver/1.0"], "Socket": socket},
            "Entrypoint": ["/bin/p"]
        });
        let server = serve_plugin(&config.to_string());
        let reference = format!("{}/esc:1", server.host());
        let mut asked = false;
        let err = m
            .install(&client, &reference, &InstallOptions::default(), |_| {
                asked = true;
                true
            })
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&reference)
                && err.contains(&format!("invalid Interface.Socket {socket:?}")),
            "{socket}: {err}"
        );
        assert!(
            !asked,
            "{socket}: privileges asked before the config was checked"
        );
        assert_eq!(plugin_dirs(&tmp.path().join("root")), 0, "{socket}");
    }
}

#[tokio::test]
async fn set_refuses_relative_sources_and_never_asks_twice() {
    let config = serde_json::json!({
        "Interface": {"Types": ["docker.volumedriver/1.0"], "Socket": "p.sock"},
        "Entrypoint": ["/bin/p"],
        "Mounts": [{"Name": "data", "Source": "/var/lib/p", "Destination": "/data",
                    "Type": "bind", "Options": ["rbind"], "Settable": ["source"]}]
    });
    let server = serve_plugin(&config.to_string());
    let tmp = tempfile::tempdir().unwrap();
    let m = Manager::open(&tmp.path().join("root")).unwrap();
    let client = Client::builder().build().unwrap();
    let reference = format!("{}/mounts:1", server.host());
    let mut granted_at_install = Vec::new();
    m.install(&client, &reference, &InstallOptions::default(), |p| {
        granted_at_install = p.to_vec();
        true
    })
    .await
    .unwrap();
    let sources = |p: &[PluginPrivilege]| -> Vec<String> {
        p.iter()
            .filter(|x| x.name == "mount")
            .flat_map(|x| x.value.clone())
            .collect()
    };
    assert_eq!(sources(&granted_at_install), ["/var/lib/p"]);

    for bad in ["data.source=", "data.source=rel/dir", "data.source=./x"] {
        let err = m
            .set(&reference, &[bad.to_owned()], |_| panic!("asked for {bad}"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("must be an absolute path"), "{bad}: {err}");
    }
    // A new source is asked for; going back to the installed one is not,
    // nor is going back to the one granted by set.
    let mut asked = Vec::new();
    m.set(&reference, &["data.source=/srv/other".to_owned()], |p| {
        asked.extend(sources(p));
        true
    })
    .unwrap();
    assert_eq!(asked, ["/srv/other"]);
    for back in ["data.source=/var/lib/p", "data.source=/srv/other"] {
        let r = m
            .set(&reference, &[back.to_owned()], |p| {
                panic!("asked again for {p:?} setting {back}")
            })
            .unwrap();
        let now = r.settings.mounts.unwrap()[0].source.clone().unwrap();
        assert_eq!(now, back.trim_start_matches("data.source="));
    }
    // A refused grant changes nothing.
    let err = m
        .set(&reference, &["data.source=/etc".to_owned()], |_| false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("mount: /etc"), "{err}");
    let r = m.get(&reference).unwrap();
    assert_eq!(
        r.settings.mounts.unwrap()[0].source.as_deref(),
        Some("/srv/other")
    );
}
