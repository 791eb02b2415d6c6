//! A layer that writes a path more than once (tars may: an appended
//! archive, a builder that rewrites a file) keeps only the last contents
//! on disk, yet its tar-split points at every occurrence's bytes. Before a
//! later entry lands on a file the layer wrote, that file is moved to
//! `<id>/shadow/<n>`, and `<id>/shadows.json` lists `(path, occurrence)`
//! for each `n`: `diff` and `check` read the k-th file record of a path
//! from its shadow when it has one.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use pluginctl_rootfs::tar::{Header, Kind};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The shadowed occurrences of a layer, in the order they were moved
/// (the index is the file's name under `shadow/`).
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Shadows {
    list: Vec<(Vec<u8>, u32)>,
    #[serde(skip)]
    index: HashMap<(Vec<u8>, u32), usize>,
}

const LIST: &str = "shadows.json";
const DIR: &str = "shadow";

impl Shadows {
    /// The shadows of the layer in `layer_dir` (none when it has none).
    pub(crate) fn load(layer_dir: &Path) -> Result<Shadows> {
        let path = layer_dir.join(LIST);
        let mut s: Shadows = match fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| Error::Corrupt(format!("{}: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Shadows::default(),
            Err(e) => return Err(Error::io(&path, e)),
        };
        s.index = s
            .list
            .iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), i))
            .collect();
        Ok(s)
    }

    /// Writes the list (when there is one) and syncs it.
    pub(crate) fn save(&self, layer_dir: &Path) -> Result<()> {
        if self.list.is_empty() {
            return Ok(());
        }
        let path = layer_dir.join(LIST);
        let bytes = serde_json::to_vec(self).expect("shadows serialise");
        let write = || -> std::io::Result<()> {
            let f = fs::File::create(&path)?;
            std::io::Write::write_all(&mut &f, &bytes)?;
            f.sync_all()
        };
        write().map_err(|e| Error::io(&path, e))
    }

    /// Where occurrence `k` (0 first) of `path`'s file records is, if it
    /// was shadowed.
    pub(crate) fn get(&self, layer_dir: &Path, path: &[u8], k: u32) -> Option<PathBuf> {
        self.index
            .get(&(path.to_vec(), k))
            .map(|n| layer_dir.join(DIR).join(n.to_string()))
    }

    /// Moves the file at `path` in the diff dir (resolved inside it) to the
    /// next shadow, as occurrence `k` of `path`.
    fn keep(
        &mut self,
        layer_dir: &Path,
        diff: &rustix::fd::OwnedFd,
        path: &[u8],
        k: u32,
    ) -> Result<()> {
        let dir = layer_dir.join(DIR);
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let (parent, base) = match path.iter().rposition(|b| *b == b'/') {
            Some(i) => (&path[..i], &path[i + 1..]),
            None => (&b"."[..], path),
        };
        let shown = String::from_utf8_lossy(path);
        let parent_fd = rustix::fs::openat2(
            diff,
            parent,
            rustix::fs::OFlags::DIRECTORY
                | rustix::fs::OFlags::RDONLY
                | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
            rustix::fs::ResolveFlags::IN_ROOT,
        )
        .map_err(|e| Error::Invalid(format!("{shown}: its directory cannot be opened: {e}")))?;
        let n = self.list.len();
        let target = dir.join(n.to_string());
        rustix::fs::renameat(&parent_fd, base, rustix::fs::CWD, &target)
            .map_err(|e| Error::io(&target, e.into()))?;
        self.index.insert((path.to_vec(), k), n);
        self.list.push((path.to_vec(), k));
        Ok(())
    }
}

/// Counts the file records of each path while a tar-split is read, to
/// find each one's shadow.
#[derive(Default)]
pub(crate) struct Occurrences(HashMap<Vec<u8>, u32>);

impl Occurrences {
    /// The occurrence (0 first) of this file record of `path`.
    pub(crate) fn next(&mut self, path: &[u8]) -> u32 {
        let k = self.0.entry(path.to_vec()).or_default();
        let this = *k;
        *k += 1;
        this
    }
}

/// The layer's regular files so far, as apply writes them: how many file
/// records each path had, and which paths hold one of them now.
#[derive(Default)]
pub(crate) struct Written {
    records: BTreeMap<Vec<u8>, u32>,
    present: BTreeSet<Vec<u8>>,
    pub(crate) shadows: Shadows,
}

impl Written {
    /// Makes way for entry `h` landing at `path`: a file of this layer
    /// there is shadowed. A non-directory over a directory holding this
    /// layer's files is refused (it would take them, and they are not
    /// kept). Then a regular file is counted.
    pub(crate) fn land(
        &mut self,
        layer_dir: &Path,
        diff: &rustix::fd::OwnedFd,
        h: &Header,
        path: &[u8],
    ) -> Result<()> {
        if self.present.remove(path) {
            let k = self.records[path] - 1;
            self.shadows.keep(layer_dir, diff, path, k)?;
        } else if h.kind != Kind::Dir {
            let mut under = path.to_vec();
            under.push(b'/');
            let mut end = path.to_vec();
            end.push(b'/' + 1);
            if self.present.range(under..end).next().is_some() {
                return Err(Error::Invalid(format!(
                    "{}: the layer puts this over a directory of files it wrote; the layer store cannot keep both, so its tar could not be rebuilt exactly",
                    h.display_path()
                )));
            }
        }
        if h.kind == Kind::File {
            *self.records.entry(path.to_vec()).or_default() += 1;
            self.present.insert(path.to_vec());
        }
        Ok(())
    }
}
