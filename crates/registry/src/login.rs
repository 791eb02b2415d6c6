//! `docker login`'s check: are these credentials good at this registry?

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderValue};

use crate::auth::Scope;
use crate::client::Client;
use crate::error::{Envelope, Error, Result};
use crate::transport::{TransportError, read_limited};

impl Client {
    /// Checks the client's credentials for `registry` (a reference domain:
    /// `docker.io`, `reg:5000`) as `docker login` does: the registry
    /// itself (never a mirror) is asked `GET /v2/`, answering its challenge
    /// (a Basic password, or a token from a Bearer realm). `Ok` when the
    /// registry accepts them, or needs none.
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
        let endpoint = inner
            .endpoints
            .endpoint(&inner.transport, &notify, &what, server)
            .await?;
        if endpoint.challenge.is_none() {
            return Ok(());
        }
        let auth = inner
            .auth
            .authorization(
                &inner.transport,
                &notify,
                &what,
                &server.host_port(),
                endpoint.base.scheme() == "https",
                endpoint.challenge.as_ref(),
                &Scope::default(),
                None,
            )
            .await?;
        let mut req = endpoint.http.get(endpoint.base.clone());
        if let Some((_, v)) = auth {
            let v = HeaderValue::from_str(&v).map_err(|_| Error::Auth {
                what: what.clone(),
                message: "the credentials cannot be sent in a header".to_owned(),
            })?;
            req = req.header(AUTHORIZATION, v);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| TransportError(e).into_error(&what, &server.host_port()))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let body = read_limited(resp, 64 << 10).await.unwrap_or_default();
        let detail =
            Envelope::parse(&body).map_or_else(String::new, |e| format!(": {}", e.message));
        Err(Error::Auth {
            what,
            message: if status == StatusCode::UNAUTHORIZED {
                format!("the registry refused the user name or password (HTTP 401{detail})")
            } else {
                format!("the registry answered HTTP {}{detail}", status.as_u16())
            },
        })
    }
}
