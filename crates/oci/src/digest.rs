//! Content digests: `algorithm ":" encoded`, as the OCI image spec defines them.

use std::fmt;
use std::io;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::Digest as _;

use crate::{Error, Result};

/// A digest algorithm that pluginctl can verify.
///
/// The OCI grammar allows other algorithms; a digest naming one is rejected at
/// parse time, since content we cannot verify is content we cannot trust.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Algorithm {
    /// SHA-256, the algorithm of every registry in use.
    #[default]
    Sha256,
    /// SHA-512, registered by the OCI image spec.
    Sha512,
}

impl Algorithm {
    /// Every algorithm pluginctl verifies.
    pub const ALL: [Algorithm; 2] = [Algorithm::Sha256, Algorithm::Sha512];

    /// The name used in digests: `sha256` or `sha512`.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// Length of the lowercase hex encoding of a digest of this algorithm.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }

    /// Looks an algorithm up by its name in a digest.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A validated content digest such as `sha256:e3b0…b855`.
///
/// The encoded part is always lowercase hex of the right length for its
/// algorithm; a value of this type cannot hold anything else.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    /// The whole digest, `algorithm:hex`, kept so that `as_str` is free.
    repr: String,
}

impl Digest {
    /// Parses and validates a digest string.
    pub fn parse(input: &str) -> Result<Digest> {
        let invalid = |reason: String| Error::InvalidDigest {
            input: input.to_owned(),
            reason,
        };
        let (name, encoded) = input
            .split_once(':')
            .ok_or_else(|| invalid("expected ALGORITHM:HEX".to_owned()))?;
        let algorithm = Algorithm::from_name(name).ok_or_else(|| {
            if name.is_empty() {
                invalid("empty algorithm".to_owned())
            } else {
                invalid(format!(
                    "unsupported algorithm {name:?} (supported: sha256, sha512)"
                ))
            }
        })?;
        if encoded.len() != algorithm.hex_len() {
            return Err(invalid(format!(
                "{algorithm} needs {} hex characters, found {}",
                algorithm.hex_len(),
                encoded.len()
            )));
        }
        if let Some(bad) = encoded
            .chars()
            .find(|c| !matches!(c, '0'..='9' | 'a'..='f'))
        {
            return Err(invalid(format!("{bad:?} is not a lowercase hex character")));
        }
        Ok(Digest {
            algorithm,
            repr: input.to_owned(),
        })
    }

    /// Builds a digest from an algorithm and the raw hash bytes.
    fn from_hash(algorithm: Algorithm, hash: &[u8]) -> Digest {
        let mut repr = String::with_capacity(algorithm.as_str().len() + 1 + hash.len() * 2);
        repr.push_str(algorithm.as_str());
        repr.push(':');
        push_hex(&mut repr, hash);
        Digest { algorithm, repr }
    }

    /// The SHA-256 digest of `bytes`.
    pub fn of_bytes(bytes: &[u8]) -> Digest {
        Digest::of_bytes_with(Algorithm::Sha256, bytes)
    }

    /// The digest of `bytes` with the given algorithm.
    pub fn of_bytes_with(algorithm: Algorithm, bytes: &[u8]) -> Digest {
        let mut d = Digester::new(algorithm);
        d.update(bytes);
        d.finish()
    }

    /// The algorithm of this digest.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The lowercase hex part after the colon.
    pub fn encoded(&self) -> &str {
        &self.repr[self.algorithm.as_str().len() + 1..]
    }

    /// The whole digest, `algorithm:hex`.
    pub fn as_str(&self) -> &str {
        &self.repr
    }

    /// The first twelve hex characters, as Docker shows short IDs.
    pub fn short(&self) -> &str {
        &self.encoded()[..12]
    }
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.repr)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.repr)
    }
}

impl FromStr for Digest {
    type Err = Error;
    fn from_str(s: &str) -> Result<Digest> {
        Digest::parse(s)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.repr)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A streaming hasher that produces a [`Digest`].
///
/// It is also an [`io::Write`], so `io::copy(&mut reader, &mut digester)`
/// hashes a stream. On x86-64 and aarch64 it uses the CPU's SHA instructions
/// when present (detected at run time by `sha2`).
#[derive(Clone)]
pub struct Digester {
    state: State,
    len: u64,
}

#[derive(Clone)]
enum State {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Digester {
    /// A hasher for the given algorithm.
    pub fn new(algorithm: Algorithm) -> Digester {
        let state = match algorithm {
            Algorithm::Sha256 => State::Sha256(sha2::Sha256::new()),
            Algorithm::Sha512 => State::Sha512(sha2::Sha512::new()),
        };
        Digester { state, len: 0 }
    }

    /// The algorithm this hasher computes.
    pub fn algorithm(&self) -> Algorithm {
        match self.state {
            State::Sha256(_) => Algorithm::Sha256,
            State::Sha512(_) => Algorithm::Sha512,
        }
    }

    /// Feeds bytes to the hash.
    pub fn update(&mut self, bytes: &[u8]) {
        match &mut self.state {
            State::Sha256(h) => h.update(bytes),
            State::Sha512(h) => h.update(bytes),
        }
        self.len += bytes.len() as u64;
    }

    /// How many bytes have been hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing has been hashed yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The digest of everything fed so far.
    pub fn finish(self) -> Digest {
        match self.state {
            State::Sha256(h) => Digest::from_hash(Algorithm::Sha256, &h.finalize()),
            State::Sha512(h) => Digest::from_hash(Algorithm::Sha512, &h.finalize()),
        }
    }
}

impl Default for Digester {
    fn default() -> Digester {
        Digester::new(Algorithm::Sha256)
    }
}

impl io::Write for Digester {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: &str) {
        let got = match Digest::parse(input) {
            Ok(d) => format!("ok {d}"),
            Err(e) => format!("err {e}"),
        };
        assert_eq!(got, expected, "input {input:?}");
    }

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parse_cases() {
        check(EMPTY, &format!("ok {EMPTY}"));
        check(
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "err invalid digest \"sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855\": 'E' is not a lowercase hex character",
        );
        check(
            "sha256:abc",
            "err invalid digest \"sha256:abc\": sha256 needs 64 hex characters, found 3",
        );
        check(
            "md5:d41d8cd98f00b204e9800998ecf8427e",
            "err invalid digest \"md5:d41d8cd98f00b204e9800998ecf8427e\": unsupported algorithm \"md5\" (supported: sha256, sha512)",
        );
        check(
            "e3b0c442",
            "err invalid digest \"e3b0c442\": expected ALGORITHM:HEX",
        );
        check(":abc", "err invalid digest \":abc\": empty algorithm");
        check(
            "sha512:abc",
            "err invalid digest \"sha512:abc\": sha512 needs 128 hex characters, found 3",
        );
    }

    #[test]
    fn known_hashes() {
        assert_eq!(Digest::of_bytes(b"").as_str(), EMPTY);
        assert_eq!(
            Digest::of_bytes_with(Algorithm::Sha512, b"abc").encoded(),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
        );
        let d = Digest::of_bytes(b"hello");
        assert_eq!(d.short(), "2cf24dba5fb0");
        assert_eq!(d.algorithm(), Algorithm::Sha256);
    }

    #[test]
    fn streaming_equals_one_shot() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut d = Digester::default();
        for chunk in data.chunks(333) {
            std::io::Write::write_all(&mut d, chunk).unwrap();
        }
        assert_eq!(d.len(), 10_000);
        assert_eq!(d.finish(), Digest::of_bytes(&data));
    }
}
