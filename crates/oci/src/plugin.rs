//! Docker's managed-plugin types: the plugin config (v1), privileges, and the
//! plugin object `docker plugin inspect` prints.
//!
//! Keys are read case-insensitively, as Go's `encoding/json` reads them
//! (authors write `description`, Docker stores `Description`), and written
//! exactly as Docker writes them: same names, same order, `null` where Go has
//! a nil slice or pointer. The `Option<Vec<_>>` fields keep that difference:
//! `None` is Go's nil and is written as `null`, `Some(vec![])` as `[]`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::json::{Child, Shape, fold_keys};
use crate::{Digest, Error, Result};

/// The config of a managed plugin: the blob of media type
/// `application/vnd.docker.plugin.v1+json`, and the `config.json` of a
/// `docker plugin create` context.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "PascalCase", default)]
pub struct PluginConfig {
    /// Arguments appended to the entrypoint.
    pub args: PluginArgs,
    /// One-line description.
    pub description: String,
    /// The Docker version that created the plugin; kept, never interpreted.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub docker_version: String,
    /// Link to the plugin's documentation.
    pub documentation: String,
    /// The command that starts the plugin.
    pub entrypoint: Option<Vec<String>>,
    /// Environment variables, each possibly settable.
    pub env: Option<Vec<PluginEnv>>,
    /// The socket and the protocols the plugin serves.
    pub interface: PluginInterface,
    /// Whether the plugin runs in the host's IPC namespace.
    pub ipc_host: bool,
    /// Capabilities and devices.
    pub linux: PluginLinux,
    /// Mounts into the plugin's rootfs.
    pub mounts: Option<Vec<PluginMount>>,
    /// The network the plugin runs in.
    pub network: PluginNetwork,
    /// Whether the plugin runs in the host's PID namespace.
    pub pid_host: bool,
    /// A path inside the plugin whose mounts propagate to the host.
    pub propagated_mount: String,
    /// The user the plugin runs as.
    pub user: PluginUser,
    /// The working directory of the entrypoint.
    pub work_dir: String,
    /// The layers of the plugin's rootfs (absent in a create context).
    #[serde(rename = "rootfs", skip_serializing_if = "Option::is_none")]
    pub rootfs: Option<PluginRootfs>,
}

/// `Args`: arguments, possibly settable.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PluginArgs {
    /// What the arguments are for.
    pub description: String,
    /// Their name (`args`).
    pub name: String,
    /// What a user may set (`value`).
    pub settable: Option<Vec<String>>,
    /// The arguments.
    pub value: Option<Vec<String>>,
}

/// An environment variable of the plugin.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PluginEnv {
    /// What it is for.
    pub description: String,
    /// The variable's name.
    pub name: String,
    /// What a user may set (`value`).
    pub settable: Option<Vec<String>>,
    /// The value; `None` leaves the variable out.
    pub value: Option<String>,
}

/// `Interface`: where and what the plugin serves.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PluginInterface {
    /// `moby.plugins.http/v1`, or empty for the default.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub protocol_scheme: String,
    /// The socket's file name under `/run/docker/plugins`.
    pub socket: String,
    /// The protocols served, such as `docker.volumedriver/1.0`.
    pub types: Option<Vec<InterfaceType>>,
}

/// `Linux`: capabilities and devices.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PluginLinux {
    /// Whether every host device is allowed.
    pub allow_all_devices: bool,
    /// Capabilities beyond the default set, as `CAP_SYS_ADMIN`.
    pub capabilities: Option<Vec<String>>,
    /// Devices to expose.
    pub devices: Option<Vec<PluginDevice>>,
}

/// A device the plugin wants.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PluginDevice {
    /// What it is for.
    pub description: String,
    /// Its name, by which settings refer to it.
    pub name: String,
    /// The host path, if set.
    pub path: Option<String>,
    /// What a user may set (`path`).
    pub settable: Option<Vec<String>>,
}

/// A mount into the plugin's rootfs.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PluginMount {
    /// What it is for.
    pub description: String,
    /// Where it appears inside the plugin.
    pub destination: String,
    /// Its name, by which settings refer to it.
    pub name: String,
    /// Mount options, as `rbind`, `rw`.
    pub options: Option<Vec<String>>,
    /// What a user may set (`source`).
    pub settable: Option<Vec<String>>,
    /// The host path, if set.
    pub source: Option<String>,
    /// The mount type (`bind`, `tmpfs`, …).
    #[serde(rename = "Type")]
    pub kind: String,
}

/// `Network`: the network the plugin joins.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PluginNetwork {
    /// `host`, `none`, or empty.
    #[serde(rename = "Type")]
    pub kind: String,
}

/// `User`: numeric user and group; zero is left out, as Go's `omitempty`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PluginUser {
    /// Group ID.
    #[serde(rename = "GID", skip_serializing_if = "is_zero")]
    pub gid: u32,
    /// User ID.
    #[serde(rename = "UID", skip_serializing_if = "is_zero")]
    pub uid: u32,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde passes a reference
fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// `rootfs`: the layers, by uncompressed digest.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PluginRootfs {
    /// The layers' diff IDs, lowest first.
    pub diff_ids: Option<Vec<Digest>>,
    /// Always `layers`.
    #[serde(rename = "type", skip_serializing_if = "String::is_empty")]
    pub kind: String,
}

const ARGS: Shape = &[
    ("Description", Child::Leaf),
    ("Name", Child::Leaf),
    ("Settable", Child::Nullable),
    ("Value", Child::Nullable),
];
const ENV: Shape = ARGS;
const INTERFACE: Shape = &[
    ("ProtocolScheme", Child::Leaf),
    ("Socket", Child::Leaf),
    ("Types", Child::Nullable),
];
const DEVICE: Shape = &[
    ("Description", Child::Leaf),
    ("Name", Child::Leaf),
    ("Path", Child::Nullable),
    ("Settable", Child::Nullable),
];
const LINUX: Shape = &[
    ("AllowAllDevices", Child::Leaf),
    ("Capabilities", Child::Nullable),
    ("Devices", Child::Array(DEVICE)),
];
const MOUNT: Shape = &[
    ("Description", Child::Leaf),
    ("Destination", Child::Leaf),
    ("Name", Child::Leaf),
    ("Options", Child::Nullable),
    ("Settable", Child::Nullable),
    ("Source", Child::Nullable),
    ("Type", Child::Leaf),
];
const NETWORK: Shape = &[("Type", Child::Leaf)];
const USER: Shape = &[("GID", Child::Leaf), ("UID", Child::Leaf)];
const ROOTFS: Shape = &[("diff_ids", Child::Nullable), ("type", Child::Leaf)];
const CONFIG: Shape = &[
    ("Args", Child::Object(ARGS)),
    ("Description", Child::Leaf),
    ("DockerVersion", Child::Leaf),
    ("Documentation", Child::Leaf),
    ("Entrypoint", Child::Nullable),
    ("Env", Child::Array(ENV)),
    ("Interface", Child::Object(INTERFACE)),
    ("IpcHost", Child::Leaf),
    ("Linux", Child::Object(LINUX)),
    ("Mounts", Child::Array(MOUNT)),
    ("Network", Child::Object(NETWORK)),
    ("PidHost", Child::Leaf),
    ("PropagatedMount", Child::Leaf),
    ("User", Child::Object(USER)),
    ("WorkDir", Child::Leaf),
    ("rootfs", Child::Object(ROOTFS)),
];

impl PluginConfig {
    /// The largest config pluginctl reads (1 MiB; Docker's are a few KiB).
    pub const MAX_BYTES: usize = 1 << 20;

    /// Parses a config blob or a context's `config.json`.
    pub fn from_slice(bytes: &[u8]) -> Result<PluginConfig> {
        if bytes.len() > PluginConfig::MAX_BYTES {
            return Err(Error::TooLarge {
                what: "plugin config",
                size: bytes.len() as u64,
                limit: PluginConfig::MAX_BYTES as u64,
            });
        }
        if bytes.starts_with(b"\xEF\xBB\xBF") {
            return Err(Error::Json {
                what: "plugin config",
                source: serde::de::Error::custom(
                    "it starts with a UTF-8 byte order mark, which JSON does not allow (Docker refuses it too)",
                ),
            });
        }
        serde_json::from_slice(bytes).map_err(|source| Error::Json {
            what: "plugin config",
            source,
        })
    }

    /// The bytes Docker writes for this config blob: compact JSON with Go's
    /// escaping and, as Go's `json.Encoder` ends every document, a newline.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = crate::json::to_vec(self);
        out.push(b'\n');
        out
    }

    /// The longest `Interface.Socket`: the plugin sees its socket at
    /// `/run/docker/plugins/<name>`, and a unix socket's path holds at most
    /// 107 bytes.
    pub const MAX_SOCKET_NAME: usize = 107 - "/run/docker/plugins/".len();

    /// Checks `Interface.Socket`: one path component (not empty, no `/`,
    /// not `.` or `..`, no NUL) short enough for a unix socket's path.
    /// Anything else would make readiness checks, `Plugin.Activate` and a
    /// published socket talk to a socket the plugin does not own.
    pub fn check_socket(&self) -> Result<()> {
        let socket = &self.interface.socket;
        let bad = |reason: String| {
            Err(Error::InvalidSocket {
                socket: socket.clone(),
                reason,
            })
        };
        if socket.is_empty() {
            return bad("the plugin config names no socket".to_owned());
        }
        if socket == "." || socket == ".." || socket.contains('/') || socket.contains('\0') {
            return bad("a socket name is one file name, without '/' or '..'".to_owned());
        }
        if socket.len() > PluginConfig::MAX_SOCKET_NAME {
            return bad(format!(
                "{} bytes, over the unix socket limit of {}",
                socket.len(),
                PluginConfig::MAX_SOCKET_NAME
            ));
        }
        Ok(())
    }

    /// The interface types, or nothing.
    pub fn types(&self) -> &[InterfaceType] {
        self.interface.types.as_deref().unwrap_or_default()
    }
}

impl Serialize for PluginConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        PluginConfig::serialize(self, s)
    }
}

impl<'de> Deserialize<'de> for PluginConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<PluginConfig, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        if !value.is_object() {
            return Err(serde::de::Error::custom(
                "plugin config must be a JSON object",
            ));
        }
        PluginConfig::deserialize(fold_keys(value, CONFIG)).map_err(serde::de::Error::custom)
    }
}

/// A protocol a plugin serves: `docker.volumedriver/1.0` is prefix `docker`,
/// capability `volumedriver`, version `1.0`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InterfaceType {
    /// The namespace, `docker` for Docker's own protocols.
    pub prefix: String,
    /// The capability: `volumedriver`, `networkdriver`, `ipamdriver`,
    /// `authz`, `logdriver`, `metricscollector`.
    pub capability: String,
    /// The protocol version; may be empty.
    pub version: String,
}

impl InterfaceType {
    /// Parses `PREFIX.CAPABILITY[/VERSION]`: the prefix ends at the last `.`
    /// before the first `/`, as Docker splits it.
    pub fn parse(s: &str) -> Result<InterfaceType> {
        let (head, version) = match s.split_once('/') {
            Some((h, v)) => (h, v),
            None => (s, ""),
        };
        match head.rsplit_once('.') {
            Some((prefix, capability)) if !prefix.is_empty() && !capability.is_empty() => {
                Ok(InterfaceType {
                    prefix: prefix.to_owned(),
                    capability: capability.to_owned(),
                    version: version.to_owned(),
                })
            }
            _ => Err(Error::InvalidInterfaceType(s.to_owned())),
        }
    }
}

impl fmt::Display for InterfaceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.prefix, self.capability)?;
        if !self.version.is_empty() {
            write!(f, "/{}", self.version)?;
        }
        Ok(())
    }
}

impl FromStr for InterfaceType {
    type Err = Error;
    fn from_str(s: &str) -> Result<InterfaceType> {
        InterfaceType::parse(s)
    }
}

impl Serialize for InterfaceType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for InterfaceType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<InterfaceType, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        InterfaceType::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// One privilege a plugin asks for, as Docker lists them before install.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PluginPrivilege {
    /// `network`, `mount`, `device`, `allow-all-devices`, `host pid`,
    /// `host ipc`, `capabilities`.
    pub name: String,
    /// Docker's explanation.
    pub description: String,
    /// The values asked for.
    pub value: Vec<String>,
}

/// A plugin's settings: the one place a user's choices live.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PluginSettings {
    /// Arguments appended to the entrypoint.
    pub args: Option<Vec<String>>,
    /// Devices with their chosen paths.
    pub devices: Option<Vec<PluginDevice>>,
    /// `NAME=value` pairs.
    pub env: Option<Vec<String>>,
    /// Mounts with their chosen sources.
    pub mounts: Option<Vec<PluginMount>>,
}

/// A plugin as `docker plugin inspect` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Plugin {
    /// The plugin's config.
    pub config: PluginConfig,
    /// Whether it runs.
    pub enabled: bool,
    /// The 64-hex plugin ID.
    #[serde(rename = "Id", default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// The local name, `name:tag`.
    pub name: String,
    /// Where it was pulled from.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub plugin_reference: String,
    /// The user's settings.
    pub settings: PluginSettings,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_type(s: &str, expected: &str) {
        let got = match InterfaceType::parse(s) {
            Ok(t) => format!("{}|{}|{} = {t}", t.prefix, t.capability, t.version),
            Err(e) => format!("err {e}"),
        };
        assert_eq!(got, expected);
    }

    #[test]
    fn interface_types() {
        check_type(
            "docker.volumedriver/1.0",
            "docker|volumedriver|1.0 = docker.volumedriver/1.0",
        );
        check_type(
            "docker.logdriver/1.0",
            "docker|logdriver|1.0 = docker.logdriver/1.0",
        );
        check_type(
            "moby.plugins.http/v1",
            "moby.plugins|http|v1 = moby.plugins.http/v1",
        );
        check_type("docker.authz", "docker|authz| = docker.authz");
        check_type(
            "volumedriver/1.0",
            "err invalid plugin interface type \"volumedriver/1.0\": expected PREFIX.CAPABILITY/VERSION",
        );
        check_type(
            ".x/1",
            "err invalid plugin interface type \".x/1\": expected PREFIX.CAPABILITY/VERSION",
        );
        check_type(
            "docker./1",
            "err invalid plugin interface type \"docker./1\": expected PREFIX.CAPABILITY/VERSION",
        );
    }

    #[test]
    fn keys_are_case_insensitive_and_nulls_keep_zero_values() {
        let c = PluginConfig::from_slice(
            br#"{"DESCRIPTION":"d","workDir":"/w","network":{"TYPE":"host"},"interface":{"types":["docker.ipamdriver/1.0"],"socket":"s.sock"},
                "linux":{"capabilities":["CAP_NET_ADMIN"],"devices":[{"name":"fuse","PATH":"/dev/fuse"}]},
                "user":{"uid":5},"rootfs":{"TYPE":"layers","Diff_IDs":[]},"propagatedMount":null,"Unknown":1}"#,
        )
        .unwrap();
        assert_eq!(c.description, "d");
        assert_eq!(c.work_dir, "/w");
        assert_eq!(c.network.kind, "host");
        assert_eq!(c.types()[0].capability, "ipamdriver");
        assert_eq!(c.interface.socket, "s.sock");
        assert_eq!(
            c.linux.devices.as_ref().unwrap()[0].path.as_deref(),
            Some("/dev/fuse")
        );
        assert_eq!(c.user.uid, 5);
        assert_eq!(c.propagated_mount, "");
        assert_eq!(c.rootfs.as_ref().unwrap().kind, "layers");
        assert_eq!(
            String::from_utf8(c.to_vec()).unwrap().trim_end(),
            r#"{"Args":{"Description":"","Name":"","Settable":null,"Value":null},"Description":"d","Documentation":"","Entrypoint":null,"Env":null,"Interface":{"Socket":"s.sock","Types":["docker.ipamdriver/1.0"]},"IpcHost":false,"Linux":{"AllowAllDevices":false,"Capabilities":["CAP_NET_ADMIN"],"Devices":[{"Description":"","Name":"fuse","Path":"/dev/fuse","Settable":null}]},"Mounts":null,"Network":{"Type":"host"},"PidHost":false,"PropagatedMount":"","User":{"UID":5},"WorkDir":"/w","rootfs":{"diff_ids":[],"type":"layers"}}"#
        );
    }

    #[test]
    fn bad_configs_say_what_is_wrong() {
        let err = |b: &[u8]| {
            let e = PluginConfig::from_slice(b).unwrap_err();
            let mut s = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(inner) = src {
                s = format!("{s}: {inner}");
                src = inner.source();
            }
            s
        };
        assert_eq!(
            err(b"[]"),
            "invalid plugin config: plugin config must be a JSON object"
        );
        assert!(err(br#"{"ipchost":"yes"}"#).starts_with(
            "invalid plugin config: invalid type: string \"yes\", expected a boolean"
        ));
        assert!(
            err(br#"{"interface":{"types":["nodot"]}}"#)
                .contains("invalid plugin interface type \"nodot\"")
        );
        assert!(
            err(br#"{"rootfs":{"diff_ids":["sha256:12"]}}"#)
                .contains("sha256 needs 64 hex characters")
        );
        assert!(err(b"{").starts_with("invalid plugin config: EOF while parsing"));
        let big = vec![b' '; PluginConfig::MAX_BYTES + 1];
        assert_eq!(
            err(&big),
            "plugin config is 1048577 bytes, over the limit of 1048576"
        );
    }
}
