//! Helpers for pluginctl's own tests. Never a dependency of a shipped crate.
//!
//! Deterministic test bytes, layers from a text description, tree
//! listings, small valid images and OCI layouts ([`image`]), a scriptable
//! HTTP server for hostile registries and token endpoints ([`http`]), and
//! real registry peers: the CNCF distribution registry started by PID, a
//! JWT token server and a transfer-cutting proxy ([`registry`]).

pub mod docker;
pub mod http;
pub mod image;
pub mod registry;

/// `len` deterministic pseudo-random bytes, different for each `seed`
/// (xorshift64), so that tests in different processes agree on content
/// without sharing files.
///
/// ```
/// let a = pluginctl_testkit::pattern(1, 100);
/// assert_eq!(a, pluginctl_testkit::pattern(1, 100));
/// assert_ne!(a, pluginctl_testkit::pattern(2, 100));
/// ```
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}

use pluginctl_rootfs::tar::{Header, Kind, Writer};

/// Builds an uncompressed tar layer from a compact text description, one
/// entry per line (blank lines and `#` comments ignored):
///
/// ```text
/// dir  etc/                      a directory (mode 0755)
/// file etc/motd "hello\n"        a file with content (mode 0644)
/// link bin/sh -> busybox         a symlink
/// hard bin/ls => bin/busybox     a hardlink to an earlier entry
/// fifo run/pipe                  a named pipe
/// char dev/null 1,3              a character device
/// wh   etc/motd                  the whiteout etc/.wh.motd
/// opq  etc                       the opaque marker etc/.wh..wh..opq
/// ```
/// Any line may end with `mode=4755 uid=1 gid=2 mtime=99 xattr.user.k=v`.
/// Names are written verbatim (`../x` and `/abs` included), which is what
/// hostile-input tests need.
///
/// ```
/// let tar = pluginctl_testkit::layer("dir a/\nfile a/b \"hi\" mode=600");
/// assert_eq!(tar.len() % 512, 0);
/// ```
pub fn layer(spec: &str) -> Vec<u8> {
    let mut w = Writer::new(Vec::new());
    for (n, line) in spec.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (h, data) =
            parse_line(line).unwrap_or_else(|e| panic!("layer spec line {}: {e}: {line}", n + 1));
        w.append(&h, &mut &data[..]).expect("writing to memory");
    }
    w.finish().expect("writing to memory")
}

fn parse_line(line: &str) -> Result<(Header, Vec<u8>), String> {
    let (line, content) = match (line.find('"'), line.rfind('"')) {
        (Some(a), Some(b)) if b > a => {
            let raw = &line[a + 1..b];
            let unescaped = raw
                .replace("\\n", "\n")
                .replace("\\t", "\t")
                .replace("\\\"", "\"");
            (
                format!("{} {}", &line[..a], &line[b + 1..]),
                unescaped.into_bytes(),
            )
        }
        _ => (line.to_owned(), Vec::new()),
    };
    let words: Vec<&str> = line.split_whitespace().collect();
    let [kind, name, rest @ ..] = words.as_slice() else {
        return Err("expected KIND NAME".to_owned());
    };
    let mut rest: Vec<&str> = rest.to_vec();
    let mut h = match *kind {
        "dir" => Header::new(Kind::Dir, name.as_bytes()),
        "file" => {
            let mut h = Header::new(Kind::File, name.as_bytes());
            h.size = content.len() as u64;
            h
        }
        "link" | "hard" => {
            let arrow = if *kind == "link" { "->" } else { "=>" };
            if rest.len() < 2 || rest[0] != arrow {
                return Err(format!("expected NAME {arrow} TARGET"));
            }
            let mut h = Header::new(
                if *kind == "link" {
                    Kind::Symlink
                } else {
                    Kind::Hardlink
                },
                name.as_bytes(),
            );
            h.link = rest[1].as_bytes().to_vec();
            h.mode = 0o777;
            rest.drain(..2);
            h
        }
        "fifo" => Header::new(Kind::Fifo, name.as_bytes()),
        "char" | "block" => {
            let mut h = Header::new(
                if *kind == "char" {
                    Kind::CharDevice
                } else {
                    Kind::BlockDevice
                },
                name.as_bytes(),
            );
            let dev = rest.first().ok_or("expected MAJOR,MINOR")?;
            let (a, b) = dev.split_once(',').ok_or("expected MAJOR,MINOR")?;
            h.dev_major = a.parse().map_err(|_| "bad major")?;
            h.dev_minor = b.parse().map_err(|_| "bad minor")?;
            rest.remove(0);
            h
        }
        "wh" | "opq" => {
            let (dir, base) = match (*kind, name.rsplit_once('/')) {
                ("opq", _) => (name.trim_end_matches('/'), ".wh..wh..opq".to_owned()),
                (_, Some((d, b))) => (d, format!(".wh.{b}")),
                (_, None) => ("", format!(".wh.{name}")),
            };
            let path = if dir.is_empty() {
                base
            } else {
                format!("{dir}/{base}")
            };
            Header::new(Kind::File, path.as_bytes())
        }
        other => return Err(format!("unknown kind {other:?}")),
    };
    for attr in rest {
        let (k, v) = attr
            .split_once('=')
            .ok_or_else(|| format!("expected KEY=VALUE, found {attr:?}"))?;
        let num = || {
            v.parse::<i64>()
                .map_err(|_| format!("{k}: {v:?} is not a number"))
        };
        match k {
            "mode" => {
                h.mode =
                    u32::from_str_radix(v, 8).map_err(|_| format!("mode {v:?} is not octal"))?;
            }
            "uid" => h.uid = num()?.cast_unsigned(),
            "gid" => h.gid = num()?.cast_unsigned(),
            "mtime" => h.mtime = num()?,
            x if x.starts_with("xattr.") => h.xattrs.push((
                x.as_bytes()["xattr.".len()..].to_vec(),
                v.as_bytes().to_vec(),
            )),
            other => return Err(format!("unknown attribute {other:?}")),
        }
    }
    Ok((h, content))
}

/// A directory tree as text, one sorted line per entry, for comparing trees
/// in tests: `d path mode`, `f path mode content`, `l path -> target`,
/// `p path mode` (fifo), `c path` (device). A file that shares its inode
/// with an earlier line ends with `=earlier/path`. Times are left out.
pub fn tree(root: &std::path::Path) -> String {
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
    let mut lines = Vec::new();
    let mut inodes: std::collections::HashMap<(u64, u64), String> =
        std::collections::HashMap::new();
    walk(root, root, &mut |rel, meta, path| {
        let mode = meta.permissions().mode() & 0o7777;
        let ft = meta.file_type();
        lines.push(if ft.is_dir() {
            format!("d {rel} {mode:o}")
        } else if ft.is_symlink() {
            format!(
                "l {rel} -> {}",
                std::fs::read_link(path).expect("readlink").display()
            )
        } else if ft.is_fifo() {
            format!("p {rel} {mode:o}")
        } else if ft.is_char_device() || ft.is_block_device() {
            format!("c {rel}")
        } else {
            let content = String::from_utf8_lossy(&std::fs::read(path).expect("read")).into_owned();
            let mut line = format!("f {rel} {mode:o} {content}");
            match inodes.entry((meta.dev(), meta.ino())) {
                std::collections::hash_map::Entry::Occupied(first) => {
                    line.push_str(" =");
                    line.push_str(first.get());
                }
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(rel.to_owned());
                }
            }
            line
        });
    });
    lines.join("\n")
}

/// Visits every entry under `dir` in sorted depth-first order, with its
/// path relative to `base`, without following symlinks.
pub fn walk(
    base: &std::path::Path,
    dir: &std::path::Path,
    f: &mut dyn FnMut(&str, &std::fs::Metadata, &std::path::Path),
) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let meta = std::fs::symlink_metadata(&path).expect("lstat");
        let rel = path
            .strip_prefix(base)
            .expect("under base")
            .to_string_lossy()
            .into_owned();
        f(&rel, &meta, &path);
        if meta.is_dir() {
            walk(base, &path, f);
        }
    }
}
