//! A sample Docker network plugin: Docker's remote network driver protocol
//! (`/NetworkDriver.*`), answering every call with success and creating no
//! interfaces, and recording each call as a `<Method> <NetworkID>` line
//! (`-` when the call names no network) in `$STATE_DIR/calls.log`, so that
//! a test on the host can read what dockerd called through the plugin's
//! propagated mount.
//!
//! Environment: `$SOCKET` (default `network.sock`), `$SOCKET_DIR` (default
//! `/run/docker/plugins`), `$STATE_DIR` (default `/data`). Exits on
//! SIGTERM or SIGINT.

use driver_plugins::{Request, Response};
use std::path::{Path, PathBuf};

fn main() {
    let state_dir =
        PathBuf::from(std::env::var("STATE_DIR").unwrap_or_else(|_| "/data".to_owned()));
    if let Err(e) = std::fs::create_dir_all(&state_dir) {
        eprintln!("network-plugin: creating {}: {e}", state_dir.display());
    }
    driver_plugins::run("network.sock", move |req| handle(&state_dir, req));
}

fn handle(state_dir: &Path, req: &Request) -> Response {
    if req.path == "/Plugin.Activate" {
        return Response::json(r#"{"Implements":["NetworkDriver"]}"#);
    }
    let method = req.path.strip_prefix("/NetworkDriver.").unwrap_or_default();
    let reply = match method {
        "GetCapabilities" => r#"{"Scope":"local","ConnectivityScope":"local"}"#,
        "CreateEndpoint" => r#"{"Interface":{}}"#,
        "EndpointOperInfo" => r#"{"Value":{}}"#,
        "CreateNetwork"
        | "DeleteNetwork"
        | "DeleteEndpoint"
        | "Join"
        | "Leave"
        | "DiscoverNew"
        | "DiscoverDelete"
        | "ProgramExternalConnectivity"
        | "RevokeExternalConnectivity"
        | "AllocateNetwork"
        | "FreeNetwork" => "{}",
        _ => return Response::error(404, &format!("unknown endpoint {}", req.path)),
    };
    let network = req.string("NetworkID").filter(|n| !n.is_empty());
    driver_plugins::append_line(
        &state_dir.join("calls.log"),
        &format!("{method} {}", network.as_deref().unwrap_or("-")),
    );
    Response::json(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_and_records_what_dockerd_calls() {
        let dir = std::env::temp_dir().join(format!("network-plugin-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let call = |path: &str, body: &str| {
            let r = handle(&dir, &Request::post(path, body));
            (r.status(), r.text())
        };
        let net = "5b7d4fd1f2ab1cc5e4b0b8b8ff0e7a3a9f3e3c0e4ad0f8a8d5d3b0a1c2e3f4a5";
        let ep = "e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1";
        // Bodies as dockerd 20.10 sends them (json.Encoder: a trailing newline).
        let create = format!(
            "{{\"NetworkID\":\"{net}\",\"Options\":{{\"com.docker.network.enable_ipv6\":false,\
             \"com.docker.network.generic\":{{}}}},\"IPv4Data\":[{{\"AddressSpace\":\"LocalDefault\",\
             \"Pool\":\"172.18.0.0/16\",\"Gateway\":\"172.18.0.1/16\",\"AuxAddresses\":null}}],\
             \"IPv6Data\":[]}}\n"
        );
        let endpoint = format!(
            "{{\"NetworkID\":\"{net}\",\"EndpointID\":\"{ep}\",\"Interface\":{{\"Address\":\
             \"172.18.0.2/16\",\"AddressIPv6\":\"\",\"MacAddress\":\"\"}},\"Options\":{{}}}}\n"
        );
        let join = format!(
            "{{\"NetworkID\":\"{net}\",\"EndpointID\":\"{ep}\",\"SandboxKey\":\
             \"/var/run/docker/netns/0123456789ab\",\"Options\":{{}}}}\n"
        );
        let ids = format!("{{\"NetworkID\":\"{net}\",\"EndpointID\":\"{ep}\"}}\n");
        assert_eq!(
            call("/Plugin.Activate", ""),
            (200, r#"{"Implements":["NetworkDriver"]}"#.into())
        );
        assert_eq!(
            call("/NetworkDriver.GetCapabilities", "null\n").1,
            r#"{"Scope":"local","ConnectivityScope":"local"}"#
        );
        assert_eq!(call("/NetworkDriver.CreateNetwork", &create).1, "{}");
        assert_eq!(
            call("/NetworkDriver.CreateEndpoint", &endpoint).1,
            r#"{"Interface":{}}"#
        );
        assert_eq!(
            call("/NetworkDriver.EndpointOperInfo", &ids).1,
            r#"{"Value":{}}"#
        );
        assert_eq!(call("/NetworkDriver.Join", &join).1, "{}");
        assert_eq!(call("/NetworkDriver.Leave", &ids).1, "{}");
        assert_eq!(call("/NetworkDriver.DeleteEndpoint", &ids).1, "{}");
        let discover = "{\"DiscoveryType\":1,\"DiscoveryData\":{\"Address\":\"10.0.0.1\"}}\n";
        assert_eq!(call("/NetworkDriver.DiscoverNew", discover).1, "{}");
        let delete = format!("{{\"NetworkID\":\"{net}\"}}\n");
        assert_eq!(call("/NetworkDriver.DeleteNetwork", &delete).1, "{}");
        let (status, body) = call("/NetworkDriver.Frobnicate", "{}");
        assert_eq!(status, 404);
        assert!(body.starts_with(r#"{"Err":"unknown endpoint"#), "{body}");
        assert_eq!(call("/VolumeDriver.Create", "{}").0, 404);

        let log = std::fs::read_to_string(dir.join("calls.log")).unwrap();
        let want = [
            "GetCapabilities -".to_owned(),
            format!("CreateNetwork {net}"),
            format!("CreateEndpoint {net}"),
            format!("EndpointOperInfo {net}"),
            format!("Join {net}"),
            format!("Leave {net}"),
            format!("DeleteEndpoint {net}"),
            "DiscoverNew -".to_owned(),
            format!("DeleteNetwork {net}"),
        ];
        assert_eq!(log.lines().collect::<Vec<_>>(), want);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
