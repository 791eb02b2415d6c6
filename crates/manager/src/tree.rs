//! A plugin's rootfs on disk: where it is, and how it is extracted from
//! the record's layers (in a staging directory, then renamed).

use std::path::{Path, PathBuf};

use crate::store::{self, Record};
use crate::{Error, Manager, Result};

impl Manager {
    /// Applies the record's layers, in manifest order, into `staging`
    /// (made afresh).
    pub(crate) fn extract_into(&self, record: &Record, staging: &Path) -> Result<()> {
        store::remove_tree(staging)?;
        std::fs::create_dir(staging).map_err(|e| Error::io(staging, e))?;
        let opts = pluginctl_rootfs::extract::Options::default();
        let mut readers = Vec::new();
        for l in &record.layers {
            readers.push(self.content.open_blob(&l.digest)?);
        }
        pluginctl_rootfs::extract::apply_layers(staging, readers, &opts)?;
        Ok(())
    }

    /// Applies the record's layers, in manifest order, into a staging
    /// directory beside the plugin's, then renames it to `rootfs/`.
    pub(crate) fn extract_rootfs(&self, record: &Record, dir: &Path) -> Result<()> {
        let paths = store::rootfs_paths(dir);
        let staging = paths.staging;
        self.extract_into(record, &staging)?;
        let target = paths.current;
        store::remove_tree(&target)?;
        std::fs::rename(&staging, &target).map_err(|e| Error::io(&target, e))
    }

    /// Where a plugin's rootfs is.
    pub fn rootfs(&self, record: &Record) -> PathBuf {
        store::rootfs_paths(&self.layout.plugin_dir(&record.id)).current
    }
}
