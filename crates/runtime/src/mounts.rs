//! The mount table, read and undone, and deletion that never crosses a
//! mount: what every teardown of a plugin relies on.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::MetadataExt as _;
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

/// Deletes a tree without crossing into another file system: a mount
/// found under it is refused (named in the error), never emptied.
/// Directories without write permission still go.
pub fn remove_tree(path: &Path) -> std::io::Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(named(path, e)),
    };
    if !meta.is_dir() {
        return fs::remove_file(path).map_err(|e| named(path, e));
    }
    walk(path, meta.dev())?;
    fs::remove_dir(path).map_err(|e| named(path, e))
}

#[allow(clippy::needless_pass_by_value)] // shaped for map_err
fn named(path: &Path, e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

fn walk(p: &Path, dev: u64) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(m) = fs::symlink_metadata(p)
        && m.permissions().mode() & 0o700 != 0o700
    {
        let _ = fs::set_permissions(
            p,
            fs::Permissions::from_mode(m.permissions().mode() | 0o700),
        );
    }
    for e in fs::read_dir(p).map_err(|e| named(p, e))? {
        let child = e.map_err(|e| named(p, e))?.path();
        let m = fs::symlink_metadata(&child).map_err(|e| named(&child, e))?;
        if m.is_dir() {
            if m.dev() != dev {
                return Err(std::io::Error::other(format!(
                    "{} is a mount point; not deleting across it",
                    child.display()
                )));
            }
            walk(&child, dev)?;
            fs::remove_dir(&child).map_err(|e| named(&child, e))?;
        } else {
            fs::remove_file(&child).map_err(|e| named(&child, e))?;
        }
    }
    Ok(())
}

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

    #[test]
    fn remove_tree_takes_read_only_directories() {
        use std::os::unix::fs::PermissionsExt as _;
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("t/ro");
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("f"), "x").unwrap();
        fs::set_permissions(&d, fs::Permissions::from_mode(0o500)).unwrap();
        remove_tree(&tmp.path().join("t")).unwrap();
        assert!(!tmp.path().join("t").exists());
        remove_tree(&tmp.path().join("absent")).unwrap();
    }
}
