//! `docker login`'s check: are these credentials good at this registry?

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderValue};

use crate::auth::{Scope, Target, pick_challenge};
use crate::client::Client;
use crate::error::{Envelope, Error, Result};
use crate::transport::{TransportError, read_limited};

impl Client {
    /// Checks the client's credentials for `registry` (a reference domain:
    /// `docker.io`, `reg:5000`; credentials are looked up under that name)
    /// as `docker login` does: the registry itself (its `server`, never a
    /// mirror) is asked `GET /v2/` without credentials, then again answering
    /// its challenge (a Basic password, or a token from a Bearer realm).
    /// `Ok` when the registry accepts them, or needs none.
    pub async fn login(&self, registry: &str) -> Result<()> {
        let what = format!("login to {registry}");
        let notify = |e: &crate::progress::Event| self.emit(e);
        let inner = &self.inner;
        let hosts = inner
            .endpoints
            .hosts(registry, Client::api_host(registry))?;
        let server = hosts
            .iter()
            .find(|h| h.is_server)
            .expect("every host list ends with the registry itself");
        let name = server.host_port();
        let endpoint = inner
            .endpoints
            .endpoint(&inner.transport, &notify, &what, server, false)
            .await?;
        let ask = |auth: Option<String>| {
            let mut req = endpoint.http.get(endpoint.base.clone());
            if let Some(v) = auth {
                req = req.header(AUTHORIZATION, v);
            }
            req.send()
        };
        let first = ask(None)
            .await
            .map_err(|e| TransportError(e).into_error(&what, &name))?;
        let challenge = match first.status() {
            s if s.is_success() => return Ok(()),
            StatusCode::UNAUTHORIZED => {
                pick_challenge(first.headers()).ok_or_else(|| Error::Auth {
                    what: what.clone(),
                    message: format!("{name} answered 401 without a challenge"),
                })?
            }
            _ => return Err(refused(&what, first).await),
        };
        let target = Target {
            host: &name,
            credentials: registry,
            base: &endpoint.base,
            http: &endpoint.http,
            challenge: Some(&challenge),
        };
        let auth = inner
            .auth
            .authorization(
                &inner.transport,
                &notify,
                &what,
                &target,
                &Scope::default(),
                None,
            )
            .await?
            .map(|(_, v)| v);
        if let Some(v) = &auth {
            HeaderValue::from_str(v).map_err(|_| Error::Auth {
                what: what.clone(),
                message: "the credentials cannot be sent in a header".to_owned(),
            })?;
        }
        let resp = ask(auth)
            .await
            .map_err(|e| TransportError(e).into_error(&what, &name))?;
        if resp.status().is_success() {
            return Ok(());
        }
        Err(refused(&what, resp).await)
    }
}

/// A registry's refusal, as an auth error with its envelope's message.
async fn refused(what: &str, resp: reqwest::Response) -> Error {
    let status = resp.status();
    let body = read_limited(resp, 64 << 10).await.unwrap_or_default();
    let detail = Envelope::parse(&body).map_or_else(String::new, |e| format!(": {}", e.message));
    Error::Auth {
        what: what.to_owned(),
        message: if status == StatusCode::UNAUTHORIZED {
            format!("the registry refused the user name or password (HTTP 401{detail})")
        } else {
            format!("the registry answered HTTP {}{detail}", status.as_u16())
        },
    }
}
