//! The mount table, read and undone, and deletion that never crosses a
//! mount (rootfs's, re-exported): what every teardown of a plugin relies on.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

/// A mountinfo field with its octal escapes (space, tab, newline,
/// backslash) decoded.
fn unescape(s: &str) -> PathBuf {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) if b[i] == b'\\' => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            _ => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    PathBuf::from(OsStr::from_bytes(&out))
}

/// The mount points at or under `dir` in this process's mount table,
/// deepest first (a point mounted twice appears twice).
pub fn mount_points_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(canon) = fs::canonicalize(dir) else {
        return Vec::new(); // nothing there, nothing mounted
    };
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape)
        .filter(|p| p.starts_with(&canon))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    points
}

/// Unmounts (detaching) everything at or under `dir`, as many times as it
/// is stacked, until the table shows nothing there.
pub fn unmount_all(dir: &Path) -> std::io::Result<()> {
    use rustix::mount::{UnmountFlags, unmount};
    for _ in 0..64 {
        let points = mount_points_under(dir);
        if points.is_empty() {
            return Ok(());
        }
        for p in points {
            match unmount(&p, UnmountFlags::DETACH) {
                Ok(()) | Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOENT) => {}
                Err(e) => {
                    return Err(std::io::Error::other(format!(
                        "unmounting {}: {e}",
                        p.display()
                    )));
                }
            }
        }
    }
    Err(std::io::Error::other(format!(
        "{} stays mounted after 64 rounds of unmounting",
        dir.display()
    )))
}

/// Deletes a tree without crossing into another file system: the one
/// tree remover, [`pluginctl_rootfs::remove::remove_tree`].
pub use pluginctl_rootfs::remove::remove_tree;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(
            unescape(r"/srv/plugin\040run/x"),
            Path::new("/srv/plugin run/x")
        );
        assert_eq!(unescape(r"/a\134b\011c"), Path::new("/a\\b\tc"));
        assert_eq!(unescape(r"/odd\04"), Path::new(r"/odd\04"));
        assert_eq!(unescape(r"/not\999"), Path::new(r"/not\999"));
    }
}
