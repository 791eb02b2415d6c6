//! A sample Docker authorization plugin (`/AuthZPlugin.AuthZReq`,
//! `/AuthZPlugin.AuthZRes`). It denies creating a volume whose name starts
//! with `$DENY_PREFIX` (a request to `[/vX.Y]/volumes/create` whose
//! base64-encoded `RequestBody` has such a `Name`) and allows everything
//! else, responses included; each decision goes to stderr.
//!
//! Environment: `$SOCKET` (default `authz.sock`), `$SOCKET_DIR` (default
//! `/run/docker/plugins`), `$DENY_PREFIX` (default `denied`). Exits on
//! SIGTERM or SIGINT.

use driver_plugins::{Request, Response, base64_decode, json, quote};

fn main() {
    let prefix = std::env::var("DENY_PREFIX").unwrap_or_else(|_| "denied".to_owned());
    eprintln!("authz-plugin: denying volume names starting with {prefix:?}");
    driver_plugins::run("authz.sock", move |req| handle(&prefix, req));
}

fn handle(prefix: &str, req: &Request) -> Response {
    match req.path.as_str() {
        "/Plugin.Activate" => Response::json(r#"{"Implements":["authz"]}"#),
        "/AuthZPlugin.AuthZReq" => {
            let body = req.text();
            let what = format!(
                "{} {}",
                json::string(&body, "RequestMethod").unwrap_or_default(),
                json::string(&body, "RequestUri").unwrap_or_default()
            );
            match decide(prefix, &body) {
                Ok(()) => {
                    eprintln!("authz-plugin: allow {what}");
                    Response::json(r#"{"Allow":true}"#)
                }
                Err(msg) => {
                    eprintln!("authz-plugin: deny {what}: {msg}");
                    Response::json(format!("{{\"Allow\":false,\"Msg\":{}}}", quote(&msg)))
                }
            }
        }
        "/AuthZPlugin.AuthZRes" => Response::json(r#"{"Allow":true}"#),
        other => Response::error(404, &format!("unknown endpoint {other}")),
    }
}

/// Why the request `body` (an authorization `Request`) is denied, if it is.
fn decide(prefix: &str, body: &str) -> Result<(), String> {
    let uri = json::string(body, "RequestUri").unwrap_or_default();
    let path = uri.split('?').next().unwrap_or_default();
    if !path.trim_end_matches('/').ends_with("/volumes/create") {
        return Ok(());
    }
    // dockerd leaves the body out when it is not JSON or too large.
    let Some(raw) = json::string(body, "RequestBody").and_then(|b| base64_decode(&b)) else {
        return Ok(());
    };
    match json::string(&String::from_utf8_lossy(&raw), "Name") {
        Some(name) if name.starts_with(prefix) => Err(format!(
            "volume name \"{name}\" is denied by the sample authz plugin"
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Standard base64 with padding, as Go encodes a `[]byte`.
    fn b64(data: &[u8]) -> String {
        const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in data.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(char::from(ABC[(n >> (18 - 6 * i) & 63) as usize]));
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    /// An `AuthZReq` body as dockerd 20.10 sends it.
    fn authz_req(method: &str, uri: &str, body: Option<&str>) -> Request {
        let body = body.map_or(String::new(), |b| {
            format!(",\"RequestBody\":\"{}\"", b64(b.as_bytes()))
        });
        Request::post(
            "/AuthZPlugin.AuthZReq",
            format!(
                "{{\"User\":\"\",\"UserAuthNMethod\":\"\",\"RequestMethod\":\"{method}\",\
                 \"RequestUri\":\"{uri}\"{body},\"RequestHeaders\":{{\"Content-Type\":\
                 \"application/json\",\"User-Agent\":\"Docker-Client/20.10.24 (linux)\"}}}}\n"
            ),
        )
    }

    #[test]
    fn denies_volumes_with_the_prefix() {
        let ask = |r: Request| handle("denied", &r).text();
        assert_eq!(
            handle("denied", &Request::post("/Plugin.Activate", "")).text(),
            r#"{"Implements":["authz"]}"#
        );
        let create = |name: &str| {
            format!(
                "{{\"Driver\":\"local\",\"DriverOpts\":{{}},\"Labels\":{{}},\"Name\":\"{name}\"}}\n"
            )
        };
        assert_eq!(
            ask(authz_req(
                "POST",
                "/v1.41/volumes/create",
                Some(&create("denied-vol"))
            )),
            r#"{"Allow":false,"Msg":"volume name \"denied-vol\" is denied by the sample authz plugin"}"#
        );
        assert_eq!(
            ask(authz_req(
                "POST",
                "/volumes/create",
                Some(&create("deniedx"))
            )),
            r#"{"Allow":false,"Msg":"volume name \"deniedx\" is denied by the sample authz plugin"}"#
        );
        for allowed in [
            authz_req("POST", "/v1.41/volumes/create", Some(&create("ok-vol"))),
            authz_req("POST", "/v1.41/volumes/create", Some(&create(""))),
            authz_req("POST", "/v1.41/volumes/create", None),
            authz_req("GET", "/v1.41/volumes?filters=%7B%7D", None),
            authz_req(
                "POST",
                "/v1.41/containers/create?name=denied-c",
                Some("{\"Image\":\"busybox\"}"),
            ),
            authz_req("GET", "/_ping", None),
        ] {
            assert_eq!(ask(allowed), r#"{"Allow":true}"#);
        }
        let res = Request::post(
            "/AuthZPlugin.AuthZRes",
            "{\"RequestMethod\":\"POST\",\"RequestUri\":\"/v1.41/volumes/create\",\
             \"ResponseStatusCode\":201,\"ResponseBody\":\"e30=\"}\n",
        );
        assert_eq!(handle("denied", &res).text(), r#"{"Allow":true}"#);
        assert_eq!(
            handle("denied", &Request::post("/AuthZPlugin.Nope", "")).status(),
            404
        );
        assert_eq!(
            handle(
                "x",
                &authz_req("POST", "/v1.41/volumes/create", Some(&create("xy")))
            )
            .text(),
            r#"{"Allow":false,"Msg":"volume name \"xy\" is denied by the sample authz plugin"}"#
        );
    }

    #[test]
    fn the_test_encoder_matches_the_decoder() {
        for s in ["", "a", "ab", "abc", "abcd", "{\"Name\":\"é\"}"] {
            assert_eq!(base64_decode(&b64(s.as_bytes())).unwrap(), s.as_bytes());
        }
        assert_eq!(b64(b"foobar"), "Zm9vYmFy");
    }
}
