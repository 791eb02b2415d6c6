//! Cleaning tar entry names into paths relative to the root.

/// The components of an entry name relative to the root, lexically cleaned:
/// leading `/` and `./`, empty and `.` components dropped, `..` resolved.
/// An empty result is the root itself. A `..` that would leave the root is
/// an error, whatever follows it.
pub(crate) fn clean(name: &[u8]) -> Result<Vec<&[u8]>, &'static str> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for c in name.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                if parts.pop().is_none() {
                    return Err("its path leaves the root through '..'");
                }
            }
            c => parts.push(c),
        }
    }
    Ok(parts)
}

/// Joins components with '/'.
pub(crate) fn join(parts: &[&[u8]]) -> Vec<u8> {
    parts.join(&b'/')
}

/// A set of paths kept as keyed 64-bit hashes of their components, for the
/// whiteout bookkeeping of one layer. Memory per path is constant whatever
/// its depth, and marking a path with all its ancestors is one pass over it:
/// the key of each prefix falls out of the running hash state. The key is
/// random per process (`RandomState`), so collisions cannot be aimed at.
pub(crate) struct PathSet {
    keys: std::collections::HashSet<u64>,
    seed: std::hash::RandomState,
}

impl PathSet {
    pub(crate) fn new() -> PathSet {
        PathSet {
            keys: std::collections::HashSet::new(),
            seed: std::hash::RandomState::new(),
        }
    }

    pub(crate) fn clear(&mut self) {
        self.keys.clear();
    }

    /// Adds `path` (components joined by '/') and every ancestor of it.
    pub(crate) fn insert_with_ancestors(&mut self, path: &[u8]) {
        use std::hash::{BuildHasher, Hasher};
        let mut h = self.seed.build_hasher();
        for c in path.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
            h.write_usize(c.len());
            h.write(c);
            self.keys.insert(h.finish());
        }
    }

    pub(crate) fn contains(&self, path: &[u8]) -> bool {
        use std::hash::{BuildHasher, Hasher};
        let mut h = self.seed.build_hasher();
        let mut any = false;
        for c in path.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
            h.write_usize(c.len());
            h.write(c);
            any = true;
        }
        any && self.keys.contains(&h.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, expected: &str) {
        let got = match clean(name.as_bytes()) {
            Ok(p) => String::from_utf8(join(&p)).unwrap(),
            Err(e) => format!("err {e}"),
        };
        assert_eq!(got, expected, "{name:?}");
    }

    #[test]
    fn path_sets_hold_ancestors() {
        let mut set = PathSet::new();
        set.insert_with_ancestors(b"a/b/c");
        for yes in [&b"a"[..], b"a/b", b"a/b/c", b"a/b/c/"] {
            assert!(set.contains(yes), "{}", String::from_utf8_lossy(yes));
        }
        for no in [&b""[..], b"b", b"a/c", b"a/b/c/d", b"ab", b"a/bc"] {
            assert!(!set.contains(no), "{}", String::from_utf8_lossy(no));
        }
        set.clear();
        assert!(!set.contains(b"a"));
    }

    #[test]
    fn cleaning() {
        check("a/b", "a/b");
        check("./a//b/", "a/b");
        check("/etc/passwd", "etc/passwd");
        check("a/../b", "b");
        check(".", "");
        check("./", "");
        check("/", "");
        check("a/./b/.", "a/b");
        check("..", "err its path leaves the root through '..'");
        check("../x", "err its path leaves the root through '..'");
        check("a/../../x", "err its path leaves the root through '..'");
        check("/../etc", "err its path leaves the root through '..'");
        check("a/b/../../c", "c");
    }
}
