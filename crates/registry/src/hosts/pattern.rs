//! Which hosts are which: insecure-registry patterns (`HOST`,
//! `HOST:PORT`, CIDR, as Docker's `--insecure-registry` takes them) and
//! this machine's own names.

use std::net::IpAddr;

use crate::error::{Error, Result};

/// One `--insecure-registry` value.
#[derive(Debug)]
pub(crate) enum HostPattern {
    Host(String),
    HostPort(String),
    Cidr(IpAddr, u8),
}

impl HostPattern {
    pub(crate) fn parse(s: &str) -> Result<HostPattern> {
        let s = s
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/');
        if let Some((ip, bits)) = s.split_once('/') {
            let ip: IpAddr = ip
                .parse()
                .map_err(|_| Error::Config(format!("insecure registry {s:?}: not a CIDR")))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let bits: u8 = bits
                .parse()
                .ok()
                .filter(|&b| b <= max)
                .ok_or_else(|| Error::Config(format!("insecure registry {s:?}: bad prefix")))?;
            return Ok(HostPattern::Cidr(ip, bits));
        }
        if s.is_empty() {
            return Err(Error::Config("insecure registry: empty host".to_owned()));
        }
        if split_host_port(s).1.is_some() {
            Ok(HostPattern::HostPort(s.to_owned()))
        } else {
            Ok(HostPattern::Host(s.to_owned()))
        }
    }

    pub(crate) fn matches(&self, host_port: &str) -> bool {
        let host_port = host_port.to_ascii_lowercase();
        let host_port = host_port.as_str();
        let (host, _) = split_host_port(host_port);
        match self {
            HostPattern::HostPort(hp) => hp == host_port,
            HostPattern::Host(h) => h == host,
            HostPattern::Cidr(net, bits) => host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .is_ok_and(|ip| in_cidr(ip, *net, *bits)),
        }
    }
}

fn in_cidr(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(bits))
            };
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(bits))
            };
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

/// `host[:port]` → (host, port); IPv6 literals keep their brackets.
fn split_host_port(s: &str) -> (&str, Option<&str>) {
    if s.starts_with('[') {
        return match s.find("]:") {
            Some(i) => (&s[..=i], Some(&s[i + 2..])),
            None => (s, None),
        };
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => (h, Some(p)),
        _ => (s, None),
    }
}

/// Whether `host[:port]` names this machine: `localhost` or a loopback
/// address.
pub(crate) fn is_loopback(host_port: &str) -> bool {
    let (h, _) = split_host_port(host_port);
    let h = h.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost") || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names() {
        for h in [
            "localhost",
            "LOCALHOST:5000",
            "127.0.0.1",
            "127.8.9.1:80",
            "[::1]:5000",
            "[::1]",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in [
            "reg.example",
            "10.0.0.1:5000",
            "[fe80::1]:5000",
            "localhost.example",
        ] {
            assert!(!is_loopback(h), "{h}");
        }
    }
}
