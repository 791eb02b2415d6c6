//! Deleting a tree without ever crossing into another file system: the
//! one tree remover of pluginctl (plugin directories, staging trees,
//! layers, bundles). A mount found under the tree is refused and named,
//! never emptied; directories without write permission still go.

use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

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
