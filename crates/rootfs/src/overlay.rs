//! Mounting an overlay of lower directories, with or without an upper
//! one: the one overlay mount of pluginctl, used by the layer store (a
//! chain read-only) and by the runtime (a plugin's rootfs over its chain).
//!
//! Deep stacks: the new mount API takes one `lowerdir+` per directory
//! (kernel 6.8+), so the depth is not limited by the page that the mount
//! options of `mount(2)` must fit in; an older kernel gets that one page
//! (about 40 layers under a usual root).

use std::path::{Path, PathBuf};

/// Why an overlay could not be mounted.
#[derive(Debug)]
pub enum MountError {
    /// The lower directories do not fit in one page of options, and the
    /// kernel has no `lowerdir+`.
    TooDeep(usize),
    /// The kernel refused.
    Io(std::io::Error),
}

impl std::fmt::Display for MountError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MountError::TooDeep(n) => write!(
                f,
                "{n} lower directories do not fit in one page of mount options, and this kernel has no `lowerdir+` (6.8)"
            ),
            MountError::Io(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for MountError {}

/// Mounts an overlay at `target` of `lowers` (top first), with `upper`
/// (the upper and work directories) read-write, else read-only (which
/// needs two lower directories at least).
pub fn mount(
    lowers: &[PathBuf],
    upper: Option<(&Path, &Path)>,
    target: &Path,
) -> Result<(), MountError> {
    match mount_new_api(lowers, upper, target) {
        Ok(()) => return Ok(()),
        // No new mount API, or no `lowerdir+` (before 6.8): the old way.
        Err(rustix::io::Errno::NOSYS | rustix::io::Errno::INVAL) => {}
        Err(e) => return Err(MountError::Io(e.into())),
    }
    let all: Vec<String> = lowers.iter().map(|p| escape(p)).collect();
    let data = match upper {
        Some((u, w)) => format!(
            "lowerdir={},upperdir={},workdir={}",
            all.join(":"),
            escape(u),
            escape(w)
        ),
        None => format!("lowerdir={}", all.join(":")),
    };
    if data.len() >= 4096 {
        return Err(MountError::TooDeep(lowers.len()));
    }
    let data = std::ffi::CString::new(data)
        .map_err(|_| MountError::Io(std::io::Error::other("a path holds a NUL")))?;
    let flags = if upper.is_some() {
        rustix::mount::MountFlags::empty()
    } else {
        rustix::mount::MountFlags::RDONLY
    };
    rustix::mount::mount("overlay", target, "overlay", flags, Some(data.as_c_str()))
        .map_err(|e| MountError::Io(e.into()))
}

fn mount_new_api(
    lowers: &[PathBuf],
    upper: Option<(&Path, &Path)>,
    target: &Path,
) -> rustix::io::Result<()> {
    use rustix::mount::{
        FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags, fsconfig_create,
        fsconfig_set_string, fsmount, fsopen, move_mount,
    };
    let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)?;
    for l in lowers {
        fsconfig_set_string(&fs, "lowerdir+", l.as_path())?;
    }
    if let Some((u, w)) = upper {
        fsconfig_set_string(&fs, "upperdir", u)?;
        fsconfig_set_string(&fs, "workdir", w)?;
    }
    fsconfig_create(&fs)?;
    let attrs = if upper.is_some() {
        MountAttrFlags::empty()
    } else {
        MountAttrFlags::MOUNT_ATTR_RDONLY
    };
    let m = fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, attrs)?;
    move_mount(
        &m,
        "",
        rustix::fs::CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
}

/// A path as one item of overlay's options: `,` separates options and
/// `:` lower directories, so both (and `\`) are escaped.
fn escape(p: &Path) -> String {
    p.to_string_lossy()
        .replace('\\', "\\\\")
        .replace(':', "\\:")
        .replace(',', "\\,")
}
