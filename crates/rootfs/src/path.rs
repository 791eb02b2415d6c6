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
