//! OCI whiteouts: the names that delete, and what they mean.

/// The prefix that marks a whiteout.
pub const PREFIX: &[u8] = b".wh.";
/// The opaque marker: hides everything the lower layers have in its directory.
pub const OPAQUE: &[u8] = b".wh..wh..opq";
/// AUFS metadata prefix (`.wh..wh.plnk`, `.wh..wh.aufs`): skipped.
pub const META_PREFIX: &[u8] = b".wh..wh.";

/// What a base name means to the layer rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Name<'a> {
    /// An ordinary name.
    Plain,
    /// `.wh..wh..opq`: the directory is opaque.
    Opaque,
    /// `.wh.<name>`: delete `<name>` from lower layers.
    Delete(&'a [u8]),
    /// AUFS metadata: ignore.
    Meta,
}

/// Classifies a base name.
pub fn classify(base: &[u8]) -> Name<'_> {
    if base == OPAQUE {
        Name::Opaque
    } else if base.starts_with(META_PREFIX) {
        Name::Meta
    } else if let Some(target) = base.strip_prefix(PREFIX) {
        Name::Delete(target)
    } else {
        Name::Plain
    }
}

/// What one entry asks of the tree, decided from its name alone: the rules
/// that extraction and flattening share, kept in one place so the two agree.
pub(crate) enum Plan<'a> {
    /// Nothing: the root's own directory entry, or AUFS metadata.
    Skip,
    /// `.wh..wh..opq` in `parent`: hide what lower layers have there.
    Opaque {
        /// The directory's components, uncleaned of symlinks.
        parent: Vec<&'a [u8]>,
    },
    /// `.wh.<target>` in `parent`: delete `target` from lower layers.
    Delete {
        /// The directory's components.
        parent: Vec<&'a [u8]>,
        /// The name to delete.
        target: &'a [u8],
    },
    /// An entry to write at `parent/base`.
    Add {
        /// The directory's components.
        parent: Vec<&'a [u8]>,
        /// The entry's own name.
        base: &'a [u8],
    },
}

/// Plans one entry; an unsafe or meaningless name is an error naming it.
pub(crate) fn plan(h: &crate::tar::Header) -> crate::Result<Plan<'_>> {
    let mut parts = crate::path::clean(&h.path).map_err(|r| crate::entry_err(h, r))?;
    let Some(base) = parts.pop() else {
        return if h.kind == crate::tar::Kind::Dir {
            // The root's own entry ("./"): the target keeps its metadata.
            Ok(Plan::Skip)
        } else {
            Err(crate::entry_err(
                h,
                "a non-directory entry for the root itself",
            ))
        };
    };
    if parts.iter().any(|c| c.starts_with(META_PREFIX)) {
        // Inside AUFS metadata (`.wh..wh.plnk/…`): not part of the tree.
        return Ok(Plan::Skip);
    }
    Ok(match classify(base) {
        Name::Meta => Plan::Skip,
        Name::Opaque => Plan::Opaque { parent: parts },
        Name::Delete(t) if t.is_empty() || t == b"." || t == b".." => {
            return Err(crate::entry_err(
                h,
                "a whiteout must name an entry, not '.', '..' or the directory itself",
            ));
        }
        Name::Delete(target) => Plan::Delete {
            parent: parts,
            target,
        },
        Name::Plain => Plan::Add {
            parent: parts,
            base,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        assert_eq!(classify(b"file"), Name::Plain);
        assert_eq!(classify(b".wh..wh..opq"), Name::Opaque);
        assert_eq!(classify(b".wh.file"), Name::Delete(b"file"));
        assert_eq!(classify(b".wh..wh.plnk"), Name::Meta);
        assert_eq!(classify(b".wh..wh.aufs"), Name::Meta);
        assert_eq!(classify(b".wh."), Name::Delete(b""));
        assert_eq!(classify(b".wh.."), Name::Delete(b"."));
        assert_eq!(classify(b"a.wh.b"), Name::Plain);
    }
}
