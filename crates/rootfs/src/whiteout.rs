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
