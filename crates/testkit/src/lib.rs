//! Helpers for pluginctl's own tests. Never a dependency of a shipped crate.
//!
//! Today: deterministic test bytes. The layer builders from a text
//! description and the hostile in-process registry join it with the crates
//! that need them.

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
