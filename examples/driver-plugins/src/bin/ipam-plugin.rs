//! A sample Docker IPAM plugin: Docker's remote IPAM protocol
//! (`/IpamDriver.*`), IPv4 only. `RequestPool` hands out `$POOL` when no
//! pool is asked for, the pool asked for otherwise; `RequestAddress` the
//! lowest free address of the pool (the first request, the gateway's,
//! gets `.1`), or the address asked for. State is kept in memory; each
//! call is also appended to `$STATE_DIR/calls.log` as `<Method> <details>`.
//!
//! Environment: `$SOCKET` (default `ipam.sock`), `$SOCKET_DIR` (default
//! `/run/docker/plugins`), `$POOL` (default `10.77.0.0/16`), `$STATE_DIR`
//! (default `/data`). Exits on SIGTERM or SIGINT.

use driver_plugins::{Request, Response, quote};
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// An allocated pool.
struct Pool {
    net: u32,
    prefix: u8,
    /// Host offsets handed out.
    used: BTreeSet<u32>,
}

impl Pool {
    fn size(&self) -> u64 {
        1 << (32 - u32::from(self.prefix))
    }

    fn cidr(&self) -> String {
        format!("{}/{}", Ipv4Addr::from(self.net), self.prefix)
    }
}

struct State {
    default_pool: (u32, u8),
    calls: PathBuf,
    pools: Mutex<(u64, BTreeMap<String, Pool>)>,
}

fn main() {
    let pool = std::env::var("POOL").unwrap_or_else(|_| "10.77.0.0/16".to_owned());
    let Some(default_pool) = parse_cidr(&pool) else {
        eprintln!("ipam-plugin: $POOL {pool:?} is not an IPv4 CIDR");
        std::process::exit(1);
    };
    let state_dir =
        PathBuf::from(std::env::var("STATE_DIR").unwrap_or_else(|_| "/data".to_owned()));
    if let Err(e) = std::fs::create_dir_all(&state_dir) {
        eprintln!("ipam-plugin: creating {}: {e}", state_dir.display());
    }
    let state = State::new(default_pool, &state_dir);
    driver_plugins::run("ipam.sock", move |req| state.handle(req));
}

/// `a.b.c.d/n` as (network address, n), host bits cleared.
fn parse_cidr(s: &str) -> Option<(u32, u8)> {
    let (ip, prefix) = s.trim().split_once('/')?;
    let ip = u32::from(ip.parse::<Ipv4Addr>().ok()?);
    let prefix = prefix.parse::<u8>().ok().filter(|&p| p <= 32)?;
    Some((ip & mask(prefix), prefix))
}

fn mask(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn err(message: &str) -> Response {
    Response::json(format!("{{\"Err\":{}}}", quote(message)))
}

impl State {
    fn new(default_pool: (u32, u8), state_dir: &Path) -> Self {
        Self {
            default_pool,
            calls: state_dir.join("calls.log"),
            pools: Mutex::new((0, BTreeMap::new())),
        }
    }

    fn handle(&self, req: &Request) -> Response {
        if req.path == "/Plugin.Activate" {
            return Response::json(r#"{"Implements":["IpamDriver"]}"#);
        }
        let method = req.path.strip_prefix("/IpamDriver.").unwrap_or_default();
        let (response, details) = match method {
            "GetCapabilities" => (
                Response::json(r#"{"RequiresMACAddress":false,"RequiresRequestReplay":false}"#),
                String::new(),
            ),
            "GetDefaultAddressSpaces" => (
                Response::json(
                    r#"{"LocalDefaultAddressSpace":"sample-local","GlobalDefaultAddressSpace":"sample-global"}"#,
                ),
                String::new(),
            ),
            "RequestPool" => self.request_pool(req),
            "ReleasePool" => {
                let id = req.string("PoolID").unwrap_or_default();
                self.lock().1.remove(&id);
                (Response::json("{}"), id)
            }
            "RequestAddress" => self.request_address(req),
            "ReleaseAddress" => {
                let (id, address) = (
                    req.string("PoolID").unwrap_or_default(),
                    req.string("Address").unwrap_or_default(),
                );
                if let (Some(pool), Ok(ip)) = (
                    self.lock().1.get_mut(&id),
                    address
                        .split('/')
                        .next()
                        .unwrap_or_default()
                        .parse::<Ipv4Addr>(),
                ) {
                    pool.used.remove(&(u32::from(ip) & !mask(pool.prefix)));
                }
                (Response::json("{}"), format!("{id} {address}"))
            }
            _ => return Response::error(404, &format!("unknown endpoint {}", req.path)),
        };
        let details = if details.is_empty() { "-" } else { &details };
        driver_plugins::append_line(&self.calls, &format!("{method} {details}"));
        response
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (u64, BTreeMap<String, Pool>)> {
        self.pools
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn request_pool(&self, req: &Request) -> (Response, String) {
        let body = req.text();
        if driver_plugins::json::boolean(&body, "V6") == Some(true) {
            return (
                err("the sample IPAM plugin has no IPv6 pools"),
                "V6 refused".to_owned(),
            );
        }
        let asked = driver_plugins::json::string(&body, "Pool").unwrap_or_default();
        let (net, prefix) = if asked.is_empty() {
            self.default_pool
        } else if let Some(cidr) = parse_cidr(&asked) {
            cidr
        } else {
            return (err(&format!("invalid pool {asked:?}")), asked);
        };
        let mut guard = self.lock();
        let (next, pools) = &mut *guard;
        *next += 1;
        let id = format!("pool-{next}");
        let pool = Pool {
            net,
            prefix,
            used: BTreeSet::new(),
        };
        let cidr = pool.cidr();
        pools.insert(id.clone(), pool);
        (
            Response::json(format!(
                "{{\"PoolID\":{},\"Pool\":{},\"Data\":{{}}}}",
                quote(&id),
                quote(&cidr)
            )),
            format!("{id} {cidr}"),
        )
    }

    fn request_address(&self, req: &Request) -> (Response, String) {
        let id = req.string("PoolID").unwrap_or_default();
        let asked = req.string("Address").unwrap_or_default();
        let mut guard = self.lock();
        let Some(pool) = guard.1.get_mut(&id) else {
            return (err(&format!("no pool {id:?}")), id);
        };
        let offset = if asked.is_empty() {
            let last = pool.size().saturating_sub(1).max(1);
            let free = (1..last).find(|o| !pool.used.contains(&u32::try_from(*o).unwrap_or(0)));
            let Some(free) = free.and_then(|o| u32::try_from(o).ok()) else {
                return (err(&format!("pool {} is full", pool.cidr())), id);
            };
            free
        } else {
            let ip = asked.split('/').next().unwrap_or_default();
            let Ok(ip) = ip.parse::<Ipv4Addr>().map(u32::from) else {
                return (err(&format!("invalid address {asked:?}")), id);
            };
            if ip & mask(pool.prefix) != pool.net {
                let message = format!("address {asked} is not in pool {}", pool.cidr());
                return (err(&message), id);
            }
            let offset = ip & !mask(pool.prefix);
            if pool.used.contains(&offset) {
                return (err(&format!("address {asked} is already allocated")), id);
            }
            offset
        };
        pool.used.insert(offset);
        let address = format!("{}/{}", Ipv4Addr::from(pool.net | offset), pool.prefix);
        (
            Response::json(format!("{{\"Address\":{},\"Data\":{{}}}}", quote(&address))),
            format!("{id} {address}"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        assert_eq!(parse_cidr("10.77.3.4/16"), Some((0x0a4d_0000, 16)));
        assert_eq!(parse_cidr("0.0.0.0/0"), Some((0, 0)));
        assert_eq!(parse_cidr("10.0.0.1/32"), Some((0x0a00_0001, 32)));
        assert_eq!(parse_cidr("10.0.0.0/33"), None);
        assert_eq!(parse_cidr("fd00::/64"), None);
    }

    #[test]
    fn pools_and_addresses_as_dockerd_asks() {
        let dir = std::env::temp_dir().join(format!("ipam-plugin-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let state = State::new(parse_cidr("10.77.0.0/16").unwrap(), &dir);
        let call = |path: &str, body: &str| state.handle(&Request::post(path, body)).text();

        assert_eq!(
            call("/Plugin.Activate", ""),
            r#"{"Implements":["IpamDriver"]}"#
        );
        assert_eq!(
            call("/IpamDriver.GetCapabilities", "null\n"),
            r#"{"RequiresMACAddress":false,"RequiresRequestReplay":false}"#
        );
        assert!(call("/IpamDriver.GetDefaultAddressSpaces", "null\n").contains("sample-local"));
        // `docker network create --ipam-driver ...`, no subnet given.
        let pool = "{\"AddressSpace\":\"sample-local\",\"Pool\":\"\",\"SubPool\":\"\",\"Options\":{},\"V6\":false}\n";
        assert_eq!(
            call("/IpamDriver.RequestPool", pool),
            r#"{"PoolID":"pool-1","Pool":"10.77.0.0/16","Data":{}}"#
        );
        // The gateway first, then two containers.
        let gateway = "{\"PoolID\":\"pool-1\",\"Address\":\"\",\"Options\":{\"RequestAddressType\":\"com.docker.network.gateway\"}}\n";
        assert_eq!(
            call("/IpamDriver.RequestAddress", gateway),
            r#"{"Address":"10.77.0.1/16","Data":{}}"#
        );
        let any = "{\"PoolID\":\"pool-1\",\"Address\":\"\",\"Options\":null}\n";
        assert!(call("/IpamDriver.RequestAddress", any).contains("\"10.77.0.2/16\""));
        assert!(call("/IpamDriver.RequestAddress", any).contains("\"10.77.0.3/16\""));
        let release = "{\"PoolID\":\"pool-1\",\"Address\":\"10.77.0.2\"}\n";
        assert_eq!(call("/IpamDriver.ReleaseAddress", release), "{}");
        assert!(call("/IpamDriver.RequestAddress", any).contains("\"10.77.0.2/16\""));
        let fixed = "{\"PoolID\":\"pool-1\",\"Address\":\"10.77.9.9\",\"Options\":{}}\n";
        assert!(call("/IpamDriver.RequestAddress", fixed).contains("\"10.77.9.9/16\""));
        assert!(call("/IpamDriver.RequestAddress", fixed).contains("already allocated"));
        let outside = "{\"PoolID\":\"pool-1\",\"Address\":\"10.78.0.1\"}\n";
        assert!(call("/IpamDriver.RequestAddress", outside).contains("not in pool"));
        let unknown = "{\"PoolID\":\"pool-9\",\"Address\":\"\"}\n";
        assert!(call("/IpamDriver.RequestAddress", unknown).contains("\"Err\""));

        // `--subnet 192.168.5.0/30`, with its gateway given.
        let subnet = "{\"AddressSpace\":\"sample-local\",\"Pool\":\"192.168.5.0/30\",\"SubPool\":\"\",\"Options\":{},\"V6\":false}\n";
        assert_eq!(
            call("/IpamDriver.RequestPool", subnet),
            r#"{"PoolID":"pool-2","Pool":"192.168.5.0/30","Data":{}}"#
        );
        let req = "{\"PoolID\":\"pool-2\",\"Address\":\"\"}\n";
        assert!(call("/IpamDriver.RequestAddress", req).contains("192.168.5.1/30"));
        assert!(call("/IpamDriver.RequestAddress", req).contains("192.168.5.2/30"));
        assert!(call("/IpamDriver.RequestAddress", req).contains("is full"));
        let v6 = "{\"AddressSpace\":\"sample-local\",\"Pool\":\"\",\"SubPool\":\"\",\"Options\":{},\"V6\":true}\n";
        assert!(call("/IpamDriver.RequestPool", v6).starts_with("{\"Err\":\""));
        assert_eq!(
            call("/IpamDriver.ReleasePool", "{\"PoolID\":\"pool-2\"}\n"),
            "{}"
        );
        assert!(call("/IpamDriver.RequestAddress", req).contains("\"Err\""));
        assert_eq!(
            state
                .handle(&Request::post("/IpamDriver.Nope", "{}"))
                .status(),
            404
        );

        let log = std::fs::read_to_string(dir.join("calls.log")).unwrap();
        let lines: Vec<_> = log.lines().collect();
        assert_eq!(lines[0], "GetCapabilities -");
        assert_eq!(lines[2], "RequestPool pool-1 10.77.0.0/16");
        assert_eq!(lines[3], "RequestAddress pool-1 10.77.0.1/16");
        assert!(lines.contains(&"ReleasePool pool-2"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
