//! Publishing a running plugin for engines that did not start it.
//!
//! Docker-compatible engines discover legacy plugins by file name:
//! `<dir>/<name>.sock` (dockerd looks there first, then in
//! `<dir>/<name>/<name>.sock`; a name with `/` or a registry host makes
//! directories, removed again when the plugin is unpublished). Most
//! plugins are published as a symbolic link to their socket; a volume
//! driver through the path-rewriting proxy of [`crate::proxy`], and for
//! podman, which does not scan that directory, also as a `containers.conf`
//! drop-in naming that socket under `[engine.volume_plugins]`.
//!
//! Everything published is marked as this plugin's (a link into its exec
//! dir, the proxy socket's device and inode, the drop-in's first line), so
//! that unpublishing never removes what someone else put there, and
//! publishing refuses to replace it.

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use pluginctl_oci::PluginConfig;

use crate::run::{Layout, Result, RunError, io};

/// Where and under which name a plugin is published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// Where engines look for legacy plugins (`/run/docker/plugins`).
    pub dir: PathBuf,
    /// The name engines use (`sample`, `reg:5000/team/vol:1.0`).
    pub name: String,
    /// Where podman reads `containers.conf` drop-ins
    /// (`/etc/containers/containers.conf.d`), when a volume driver is to be
    /// registered there.
    pub podman_dir: Option<PathBuf>,
}

impl Publish {
    /// `<dir>/<name>.sock`.
    pub fn socket(&self) -> PathBuf {
        self.dir.join(format!("{}.sock", self.name))
    }

    /// The podman drop-in of plugin `id`: `<podman_dir>/pluginctl-<id>.conf`.
    pub fn podman_file(&self, id: &str) -> Option<PathBuf> {
        self.podman_dir
            .as_ref()
            .map(|d| d.join(format!("pluginctl-{id}.conf")))
    }
}

fn is_volume_driver(config: &PluginConfig) -> bool {
    config
        .types()
        .iter()
        .any(|t| t.prefix == "docker" && t.capability == "volumedriver")
}

/// Publishes the plugin's socket at [`Publish::socket`] (what this plugin
/// published before, or a dead socket, is replaced; anything else there is
/// left alone and named in the error), and registers a volume driver with
/// podman. The proxy's listener lives as long as this process.
pub fn publish(layout: &Layout, config: &PluginConfig) -> Result<()> {
    use std::os::unix::fs::FileTypeExt as _;
    let Some(publish) = &layout.publish else {
        return Ok(());
    };
    let link = publish.socket();
    let target = layout.socket(config);
    if let Ok(meta) = fs::symlink_metadata(&link) {
        let ft = meta.file_type();
        let ours = (ft.is_symlink()
            && fs::read_link(&link).is_ok_and(|t| t.starts_with(&layout.exec_dir)))
            || published_here(layout, &link)
            || (ft.is_socket() && crate::activate::connect(&link).is_err());
        if !ours {
            return Err(RunError(format!(
                "publishing the plugin's socket at {}: something else is there already",
                link.display()
            )));
        }
        fs::remove_file(&link).map_err(|e| io("removing", &link, e))?;
    }
    let dir = link.parent().unwrap_or(Path::new("/"));
    fs::create_dir_all(dir).map_err(|e| io("creating", dir, e))?;
    if !is_volume_driver(config) {
        let tmp = dir.join(format!(".{}.pluginctl-{}", std::process::id(), layout.id));
        let _ = fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&target, &tmp).map_err(|e| io("linking", &tmp, e))?;
        return fs::rename(&tmp, &link).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            io("publishing the plugin's socket at", &link, e)
        });
    }
    let rewrite = crate::proxy::Rewrite {
        propagated_mount: config.propagated_mount.clone(),
        propagated_host: layout.propagated(),
        rootfs_host: layout.rootfs_mount(),
    };
    crate::proxy::proxy(&link, target, rewrite, &layout.mounts_file())
        .map_err(|e| io("publishing the plugin's socket at", &link, e))?;
    // What unpublish may remove: this very socket, by inode.
    let meta = fs::symlink_metadata(&link).map_err(|e| io("publishing at", &link, e))?;
    let marker = layout.exec_dir.join("published");
    fs::write(
        &marker,
        format!("{} {}\n{}", meta.dev(), meta.ino(), link.display()),
    )
    .map_err(|e| io("writing", &marker, e))?;
    if let Some(file) = publish.podman_file(&layout.id) {
        write_podman(&file, &layout.id, &publish.name, &link)?;
    }
    Ok(())
}

/// Whether `link` is the socket this plugin's publish recorded.
fn published_here(layout: &Layout, link: &Path) -> bool {
    let Ok(text) = fs::read_to_string(layout.exec_dir.join("published")) else {
        return false;
    };
    let Ok(meta) = fs::symlink_metadata(link) else {
        return false;
    };
    text.lines().next() == Some(&format!("{} {}", meta.dev(), meta.ino()))
        && text.lines().nth(1) == Some(&*link.to_string_lossy())
}

/// Removes what publish made, when it is this plugin's: the socket or
/// link, the directories its name made (when empty), the podman drop-in.
pub fn unpublish(layout: &Layout) {
    let Some(publish) = &layout.publish else {
        return;
    };
    let link = publish.socket();
    if fs::read_link(&link).is_ok_and(|t| t.starts_with(&layout.exec_dir))
        || published_here(layout, &link)
    {
        let _ = fs::remove_file(&link);
    }
    let mut parent = link.parent();
    while let Some(d) = parent.filter(|d| *d != publish.dir && d.starts_with(&publish.dir)) {
        if fs::remove_dir(d).is_err() {
            break; // not empty: someone else's too
        }
        parent = d.parent();
    }
    if let Some(file) = publish.podman_file(&layout.id)
        && podman_is_ours(&file, &layout.id)
    {
        let _ = fs::remove_file(&file);
    }
}

/// The first line of a drop-in this plugin wrote.
fn podman_marker(id: &str) -> String {
    format!("# pluginctl: plugin {id}; `pluginctl disable` removes this file")
}

fn podman_is_ours(file: &Path, id: &str) -> bool {
    fs::read_to_string(file).is_ok_and(|t| t.lines().next() == Some(&*podman_marker(id)))
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The drop-in: podman's `--driver NAME` reaches the published socket.
pub fn podman_dropin(id: &str, name: &str, socket: &Path) -> String {
    format!(
        "{}\n[engine.volume_plugins]\n{} = {}\n",
        podman_marker(id),
        toml_string(name),
        toml_string(&socket.to_string_lossy())
    )
}

/// Writes the drop-in atomically; a file of that name that this plugin
/// did not write is left alone and named in the error.
fn write_podman(file: &Path, id: &str, name: &str, socket: &Path) -> Result<()> {
    if file.exists() && !podman_is_ours(file, id) {
        return Err(RunError(format!(
            "registering the plugin with podman at {}: something else is there already",
            file.display()
        )));
    }
    let dir = file.parent().unwrap_or(Path::new("/"));
    fs::create_dir_all(dir).map_err(|e| io("creating", dir, e))?;
    let tmp = dir.join(format!(".pluginctl-{id}.{}", std::process::id()));
    fs::write(&tmp, podman_dropin(id, name, socket)).map_err(|e| io("writing", &tmp, e))?;
    fs::rename(&tmp, file).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io("writing", file, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn podman_dropins_are_toml_naming_the_socket() {
        let text = podman_dropin(
            "abc",
            "reg:5000/team/vol:1.0",
            Path::new("/run/docker/plugins/reg:5000/team/vol:1.0.sock"),
        );
        assert_eq!(
            text,
            "# pluginctl: plugin abc; `pluginctl disable` removes this file\n\
             [engine.volume_plugins]\n\
             \"reg:5000/team/vol:1.0\" = \"/run/docker/plugins/reg:5000/team/vol:1.0.sock\"\n"
        );
        assert_eq!(toml_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000A\"");
    }

    #[test]
    fn a_drop_in_someone_else_wrote_is_never_touched() {
        let tmp = std::env::temp_dir().join(format!("pluginctl-podman-{}", std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        let file = tmp.join("pluginctl-abc.conf");
        write_podman(&file, "abc", "n", Path::new("/s.sock")).unwrap();
        assert!(podman_is_ours(&file, "abc"));
        write_podman(&file, "abc", "n", Path::new("/t.sock")).unwrap();
        assert!(fs::read_to_string(&file).unwrap().contains("/t.sock"));
        fs::write(&file, "[engine]\n").unwrap();
        let err = write_podman(&file, "abc", "n", Path::new("/s.sock")).unwrap_err();
        assert!(err.0.contains("something else is there"), "{err}");
        assert_eq!(fs::read_to_string(&file).unwrap(), "[engine]\n");
        fs::remove_dir_all(&tmp).unwrap();
    }
}
