//! The runtime spec against what Docker 20.10 generated, and the rules it
//! applies to other configs.

use pluginctl_oci::{PluginConfig, PluginSettings};
use pluginctl_runtime::spec::{self, HostDevice, Paths};
use serde_json::Value;

const ID: &str = "ff6df12068dee382b7f2a42ed14a6d60969a0ae4a40988399ee340dafca55971";

fn docker_paths() -> Paths {
    Paths {
        rootfs: format!("/var/lib/docker/plugins/{ID}/rootfs").into(),
        socket_dir: format!("/run/docker/plugins/{ID}").into(),
        propagated_mount: format!("/var/lib/docker/plugins/{ID}/propagated-mount").into(),
        logging: None,
    }
}

/// Settings as a fresh install fills them.
fn settings_of(c: &PluginConfig) -> PluginSettings {
    PluginSettings {
        args: Some(c.args.value.clone().unwrap_or_default()),
        devices: Some(c.linux.devices.clone().unwrap_or_default()),
        env: Some(
            c.env
                .iter()
                .flatten()
                .filter_map(|e| e.value.as_ref().map(|v| format!("{}={v}", e.name)))
                .collect(),
        ),
        mounts: Some(c.mounts.clone().unwrap_or_default()),
    }
}

fn no_devices(p: &str) -> Result<HostDevice, String> {
    Err(format!("no device {p} in this test"))
}

fn build(json: &str) -> Result<Value, String> {
    let c = PluginConfig::from_slice(json.as_bytes()).unwrap();
    spec::build(&c, &settings_of(&c), &docker_paths(), &no_devices).map_err(|e| e.to_string())
}

#[test]
fn equals_the_spec_docker_wrote_for_the_same_plugin() {
    let config = PluginConfig::from_slice(include_bytes!(
        "../../../testdata/docker-20.10/plugin-context-config.json"
    ))
    .unwrap();
    let ours = spec::build(&config, &settings_of(&config), &docker_paths(), &no_devices).unwrap();
    let docker: Value = serde_json::from_slice(include_bytes!(
        "../../../testdata/docker-20.10/plugin-runtime-oci-spec.json"
    ))
    .unwrap();
    assert_eq!(ours, docker);
}

fn namespaces(s: &Value) -> Vec<&str> {
    s["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect()
}

fn destinations(s: &Value) -> Vec<&str> {
    s["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["destination"].as_str().unwrap())
        .collect()
}

#[test]
fn namespaces_follow_network_pid_and_ipc() {
    let s = build(r#"{"Entrypoint":["/p"]}"#).unwrap();
    assert_eq!(namespaces(&s), ["mount", "network", "uts", "pid", "ipc"]);
    assert!(
        !destinations(&s).contains(&"/etc/hosts"),
        "no network type, no hosts file"
    );
    let s =
        build(r#"{"Entrypoint":["/p"],"Network":{"Type":"bridge"},"PidHost":true,"IpcHost":true}"#)
            .unwrap();
    assert_eq!(namespaces(&s), ["mount", "network", "uts"]);
    assert!(destinations(&s).ends_with(&["/run/docker/plugins", "/etc/hosts", "/etc/resolv.conf"]));
}

#[test]
fn propagated_mount_comes_last_and_shares_the_rootfs() {
    let s = build(r#"{"Entrypoint":["/p"],"PropagatedMount":"/data","WorkDir":"/srv","Args":{"Value":["-v"],"Settable":["value"]}}"#).unwrap();
    let last = s["mounts"].as_array().unwrap().last().unwrap();
    assert_eq!(last["destination"], "/data");
    assert_eq!(
        last["source"],
        format!("/var/lib/docker/plugins/{ID}/propagated-mount")
    );
    assert_eq!(
        last["options"],
        serde_json::json!(["rbind", "rw", "rshared"])
    );
    assert_eq!(s["linux"]["rootfsPropagation"], "rshared");
    assert_eq!(s["process"]["cwd"], "/srv");
    assert_eq!(s["process"]["args"], serde_json::json!(["/p", "-v"]));
}

#[test]
fn devices_from_settings_and_all_devices() {
    let c = PluginConfig::from_slice(br#"{"Entrypoint":["/p"],"Linux":{"Devices":[{"Name":"fuse","Path":"/dev/fuse","Settable":["path"]}]}}"#).unwrap();
    let table = |p: &str| -> Result<HostDevice, String> {
        match p {
            "/dev/fuse" => Ok(('c', 10, 229, 0o666, 0, 0)),
            other => Err(format!("no {other}")),
        }
    };
    let s = spec::build(&c, &settings_of(&c), &docker_paths(), &table).unwrap();
    assert_eq!(s["linux"]["devices"][0]["path"], "/dev/fuse");
    let rules = s["linux"]["resources"]["devices"].as_array().unwrap();
    assert_eq!(rules.last().unwrap()["major"], 10);
    assert_eq!(rules.last().unwrap()["allow"], true);
    let mut moved = settings_of(&c);
    moved.devices.as_mut().unwrap()[0].path = Some("/dev/nope".into());
    let err = spec::build(&c, &moved, &docker_paths(), &table)
        .unwrap_err()
        .to_string();
    assert!(err.contains("/dev/nope"), "{err}");

    let s = build(r#"{"Entrypoint":["/p"],"Linux":{"AllowAllDevices":true}}"#).unwrap();
    assert_eq!(
        s["linux"]["resources"]["devices"],
        serde_json::json!([{"allow": true, "access": "rwm"}])
    );
}

#[test]
fn settings_sources_win_and_bad_configs_say_why() {
    let c = PluginConfig::from_slice(br#"{"Entrypoint":["/p"],"Mounts":[{"Name":"data","Source":"/srv","Destination":"/data","Type":"bind","Options":["rbind"],"Settable":["source"]}]}"#).unwrap();
    let mut s = settings_of(&c);
    s.mounts.as_mut().unwrap()[0].source = Some("/home/x".into());
    let spec = spec::build(&c, &s, &docker_paths(), &no_devices).unwrap();
    let data = spec["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["destination"] == "/data")
        .unwrap();
    assert_eq!(data["source"], "/home/x");

    let err =
        build(r#"{"Entrypoint":["/p"],"Mounts":[{"Name":"m","Destination":"/m","Type":"bind"}]}"#)
            .unwrap_err();
    assert!(err.contains("\"m\"") && err.contains("m.source="), "{err}");
    let err = build(r#"{"Interface":{"Socket":"s"}}"#).unwrap_err();
    assert!(err.contains("Entrypoint"), "{err}");
    // A user mount on a default /dev/ destination replaces the default.
    let s = build(r#"{"Entrypoint":["/p"],"Mounts":[{"Name":"shm","Source":"/dev/shm","Destination":"/dev/shm","Type":"bind","Options":["rbind"]}]}"#).unwrap();
    let shm: Vec<&Value> = s["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["destination"] == "/dev/shm")
        .collect();
    assert_eq!(shm.len(), 1);
    assert_eq!(shm[0]["source"], "/dev/shm");
}

#[test]
fn a_published_log_driver_sees_dockers_fifo_directory_at_its_own_path() {
    let config =
        r#"{"Entrypoint":["/p"],"Interface":{"Types":["docker.logdriver/1.0"],"Socket":"l.sock"}}"#;
    let c = PluginConfig::from_slice(config.as_bytes()).unwrap();
    let mut paths = docker_paths();
    let without = spec::build(&c, &settings_of(&c), &paths, &no_devices).unwrap();
    let dests = |s: &Value| -> Vec<String> {
        s["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["destination"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(!dests(&without).contains(&spec::LOGGING_DIR.to_owned()));
    paths.logging = Some(spec::LOGGING_DIR.into());
    let with = spec::build(&c, &settings_of(&c), &paths, &no_devices).unwrap();
    let m = with["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["destination"] == spec::LOGGING_DIR)
        .expect("the logging mount");
    assert_eq!(m["source"], spec::LOGGING_DIR);
    assert_eq!(m["options"], serde_json::json!(["rbind", "rw"]));
}
