//! The privileges a Docker managed plugin asks for.
//!
//! A pure function from a plugin config (and the user's settings, which
//! replace mount sources and device paths) to the list Docker shows before
//! `docker plugin install`, in Docker's order and words; the check of a
//! required list against a granted one, as Docker validates it; and the
//! difference between two lists (what an upgrade or a `set` would add).
//!
//! ```
//! use pluginctl_oci::PluginConfig;
//! use pluginctl_privileges::{compute, diff, equal};
//!
//! let config = PluginConfig::from_slice(
//!     br#"{"Network":{"Type":"host"},"Linux":{"Capabilities":["CAP_SYS_ADMIN"]}}"#,
//! )
//! .unwrap();
//! let required = compute(&config, None);
//! assert_eq!(required[0].name, "network");
//! assert_eq!(required[1].value, ["CAP_SYS_ADMIN"]);
//! assert!(equal(&required, &required));
//! assert!(diff(&[], &required).is_empty());
//! assert_eq!(diff(&required, &[]).len(), 2);
//! ```

use pluginctl_oci::{PluginConfig, PluginPrivilege, PluginSettings};

fn privilege(name: &str, description: &str, value: Vec<String>) -> PluginPrivilege {
    PluginPrivilege {
        name: name.to_owned(),
        description: description.to_owned(),
        value,
    }
}

/// The privileges `config` needs, given the user's `settings` (whose mounts
/// and devices, when present, replace the config's: a `set` of a mount
/// source changes what is asked). Docker's names, descriptions and order:
/// network (unless empty, `null` or `bridge`), host ipc, host pid, each
/// mount with a source, each device with a path, all devices,
/// capabilities.
pub fn compute(config: &PluginConfig, settings: Option<&PluginSettings>) -> Vec<PluginPrivilege> {
    let mut out = Vec::new();
    let net = config.network.kind.as_str();
    if !matches!(net, "" | "null" | "bridge") {
        out.push(privilege(
            "network",
            "permissions to access a network",
            vec![net.to_owned()],
        ));
    }
    if config.ipc_host {
        out.push(privilege(
            "host ipc namespace",
            "allow access to host ipc namespace",
            vec!["true".to_owned()],
        ));
    }
    if config.pid_host {
        out.push(privilege(
            "host pid namespace",
            "allow access to host pid namespace",
            vec!["true".to_owned()],
        ));
    }
    let mounts = settings
        .and_then(|s| s.mounts.as_ref())
        .or(config.mounts.as_ref());
    for m in mounts.into_iter().flatten() {
        if let Some(src) = &m.source {
            out.push(privilege("mount", "host path to mount", vec![src.clone()]));
        }
    }
    let devices = settings
        .and_then(|s| s.devices.as_ref())
        .or(config.linux.devices.as_ref());
    for d in devices.into_iter().flatten() {
        if let Some(path) = &d.path {
            out.push(privilege(
                "device",
                "host device to access",
                vec![path.clone()],
            ));
        }
    }
    if config.linux.allow_all_devices {
        out.push(privilege(
            "allow-all-devices",
            "allow 'rwm' access to all devices",
            vec!["true".to_owned()],
        ));
    }
    if let Some(caps) = config.linux.capabilities.as_ref().filter(|c| !c.is_empty()) {
        out.push(privilege(
            "capabilities",
            "list of additional capabilities required",
            caps.clone(),
        ));
    }
    out
}

/// `(name, sorted values)` of each privilege, sorted: the form Docker
/// compares (descriptions are ignored).
fn normal(list: &[PluginPrivilege]) -> Vec<(String, Vec<String>)> {
    let mut v: Vec<(String, Vec<String>)> = list
        .iter()
        .map(|p| {
            let mut values = p.value.clone();
            values.sort();
            (p.name.clone(), values)
        })
        .collect();
    v.sort();
    v
}

/// Whether `granted` is exactly `required`: the same privileges by name and
/// values, in any order, descriptions ignored. (Docker skips the first
/// element after sorting by mistake; we compare all of them.)
pub fn equal(required: &[PluginPrivilege], granted: &[PluginPrivilege]) -> bool {
    normal(required) == normal(granted)
}

/// What `wanted` asks beyond `have`: each privilege of `wanted` with the
/// values `have` does not grant under the same name (an upgrade's or a
/// `set`'s new demands). Empty when `have` covers `wanted`.
pub fn diff(wanted: &[PluginPrivilege], have: &[PluginPrivilege]) -> Vec<PluginPrivilege> {
    let mut out: Vec<PluginPrivilege> = Vec::new();
    for w in wanted {
        let missing: Vec<String> = w
            .value
            .iter()
            .filter(|v| !have.iter().any(|h| h.name == w.name && h.value.contains(v)))
            .cloned()
            .collect();
        if missing.is_empty() {
            continue;
        }
        match out.iter_mut().find(|o| o.name == w.name) {
            Some(o) => {
                for m in missing {
                    if !o.value.contains(&m) {
                        o.value.push(m);
                    }
                }
            }
            None => out.push(PluginPrivilege {
                name: w.name.clone(),
                description: w.description.clone(),
                value: missing,
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> PluginConfig {
        PluginConfig::from_slice(json.as_bytes()).unwrap()
    }

    fn names(list: &[PluginPrivilege]) -> Vec<(&str, Vec<&str>)> {
        list.iter()
            .map(|p| {
                (
                    p.name.as_str(),
                    p.value.iter().map(String::as_str).collect(),
                )
            })
            .collect()
    }

    #[test]
    #[allow(clippy::items_after_statements)]
    fn table_of_configs() {
        type Case<'a> = (&'a str, &'a [(&'a str, &'a [&'a str])]);
        let cases: &[Case<'_>] = &[
            ("{}", &[]),
            (r#"{"Network":{"Type":""}}"#, &[]),
            (r#"{"Network":{"Type":"null"}}"#, &[]),
            (r#"{"Network":{"Type":"bridge"}}"#, &[]),
            (r#"{"Network":{"Type":"host"}}"#, &[("network", &["host"])]),
            (r#"{"Network":{"Type":"none"}}"#, &[("network", &["none"])]),
            (r#"{"IpcHost":true}"#, &[("host ipc namespace", &["true"])]),
            (r#"{"PidHost":true}"#, &[("host pid namespace", &["true"])]),
            (
                r#"{"Mounts":[{"Name":"a","Source":"/srv"},{"Name":"b","Source":null},{"Name":"c","Source":"/var/x"}]}"#,
                &[("mount", &["/srv"]), ("mount", &["/var/x"])],
            ),
            (
                r#"{"Linux":{"Devices":[{"Name":"fuse","Path":"/dev/fuse"},{"Name":"none"}]}}"#,
                &[("device", &["/dev/fuse"])],
            ),
            (
                r#"{"Linux":{"AllowAllDevices":true,"Capabilities":[]}}"#,
                &[("allow-all-devices", &["true"])],
            ),
            (
                r#"{"Linux":{"Capabilities":["CAP_SYS_ADMIN","CAP_NET_ADMIN"]}}"#,
                &[("capabilities", &["CAP_SYS_ADMIN", "CAP_NET_ADMIN"])],
            ),
            // Everything: Docker's order whatever the JSON's.
            (
                r#"{"linux":{"capabilities":["CAP_X"],"allowAllDevices":true,"devices":[{"path":"/dev/d"}]},
                   "mounts":[{"source":"/m"}],"pidhost":true,"ipchost":true,"network":{"type":"host"}}"#,
                &[
                    ("network", &["host"]),
                    ("host ipc namespace", &["true"]),
                    ("host pid namespace", &["true"]),
                    ("mount", &["/m"]),
                    ("device", &["/dev/d"]),
                    ("allow-all-devices", &["true"]),
                    ("capabilities", &["CAP_X"]),
                ],
            ),
        ];
        for (json, want) in cases {
            let got = compute(&config(json), None);
            let want: Vec<(&str, Vec<&str>)> = want.iter().map(|(n, v)| (*n, v.to_vec())).collect();
            assert_eq!(names(&got), want, "{json}");
        }
    }

    #[test]
    fn settings_replace_mount_sources_and_device_paths() {
        let c = config(
            r#"{"Mounts":[{"Name":"data","Source":"/srv","Settable":["source"]}],
                "Linux":{"Devices":[{"Name":"d","Path":"/dev/a"}]}}"#,
        );
        let mut s = PluginSettings {
            mounts: c.mounts.clone(),
            devices: c.linux.devices.clone(),
            ..PluginSettings::default()
        };
        s.mounts.as_mut().unwrap()[0].source = Some("/home".into());
        s.devices.as_mut().unwrap()[0].path = Some("/dev/b".into());
        assert_eq!(
            names(&compute(&c, Some(&s))),
            [("mount", vec!["/home"]), ("device", vec!["/dev/b"])]
        );
        let wider = diff(&compute(&c, Some(&s)), &compute(&c, None));
        assert_eq!(
            names(&wider),
            [("mount", vec!["/home"]), ("device", vec!["/dev/b"])]
        );
    }

    #[test]
    fn docker_answer_for_the_sample_context() {
        let config = PluginConfig::from_slice(include_bytes!(
            "../../../testdata/docker-20.10/plugin-context-config.json"
        ))
        .unwrap();
        let docker: Vec<PluginPrivilege> = serde_json::from_slice(include_bytes!(
            "../../../testdata/docker-20.10/plugin-privileges-api.json"
        ))
        .unwrap();
        let ours = compute(&config, None);
        assert_eq!(ours, docker, "same names, descriptions, values and order");
        assert!(equal(&ours, &docker));
    }

    #[test]
    fn comparison_ignores_order_and_descriptions_but_not_values() {
        let a = vec![
            privilege("mount", "x", vec!["/a".into()]),
            privilege("capabilities", "y", vec!["B".into(), "A".into()]),
        ];
        let b = vec![
            privilege("capabilities", "other words", vec!["A".into(), "B".into()]),
            privilege("mount", "", vec!["/a".into()]),
        ];
        assert!(equal(&a, &b));
        let mut c = b.clone();
        c[1].value = vec!["/b".into()];
        assert!(!equal(&a, &c));
        // The first element after sorting counts (Docker's loop skips it).
        let d = vec![
            privilege("capabilities", "", vec!["A".into(), "C".into()]),
            privilege("mount", "", vec!["/a".into()]),
        ];
        assert!(!equal(&a, &d));
        assert!(!equal(&a, &a[..1]));
        assert!(equal(&[], &[]));
    }

    #[test]
    fn diff_lists_only_new_values() {
        let old = vec![
            privilege("mount", "host path to mount", vec!["/a".into()]),
            privilege("capabilities", "c", vec!["A".into()]),
        ];
        let new = vec![
            privilege("mount", "host path to mount", vec!["/a".into()]),
            privilege("mount", "host path to mount", vec!["/b".into()]),
            privilege("capabilities", "c", vec!["A".into(), "B".into()]),
            privilege("network", "n", vec!["host".into()]),
        ];
        assert_eq!(
            names(&diff(&new, &old)),
            [
                ("mount", vec!["/b"]),
                ("capabilities", vec!["B"]),
                ("network", vec!["host"])
            ]
        );
        assert!(diff(&old, &new).is_empty());
    }
}
