//! The HTTP side: one typed GraphQL call ([`Client::run`]), the server's readiness
//! ([`Client::ready`]) and the live event stream (`--watch`, [`Client::subscribe`]).

use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use graphql_client::GraphQLQuery;
use reqwest::Url;
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest as _};

use crate::{Error, Result, error::transport_cause};

/// A connection to one server's GraphQL API.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    endpoint: Url,
    token: Option<std::sync::Arc<SecretString>>,
}

/// `http://host:port` → `http://host:port/graphql`; a URL already ending in `/graphql` is kept.
pub fn endpoint(server: &str) -> Result<Url> {
    let bad = |reason: &str| Error::BadUrl {
        url: server.to_string(),
        reason: reason.to_string(),
    };
    let with_scheme = if server.contains("://") {
        server.to_string()
    } else {
        format!("http://{server}")
    };
    let mut url = Url::parse(&with_scheme).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("the scheme must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    if !url.path().trim_end_matches('/').ends_with("/graphql") {
        let path = format!("{}/graphql", url.path().trim_end_matches('/'));
        url.set_path(&path);
    }
    url.set_query(None);
    url.set_fragment(None);
    Ok(url)
}

fn host_port(url: &Url) -> String {
    format!(
        "{}:{}",
        url.host_str().unwrap_or_default(),
        url.port_or_known_default().unwrap_or_default()
    )
}

impl Client {
    /// A client for `server` (see [`endpoint`]) presenting `token`.
    pub fn new(server: &str, token: Option<SecretString>, timeout: Duration) -> Result<Client> {
        let endpoint = endpoint(server)?;
        // reqwest and tungstenite are built without a bundled TLS provider; the binary installs
        // ring at start-up, and a library caller that did not gets the same.
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("linkplane-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Usage(format!("building the HTTP client: {e}")))?;
        Ok(Client {
            http,
            endpoint,
            token: token.map(std::sync::Arc::new),
        })
    }

    /// The GraphQL URL.
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    fn unreachable(&self, url: &Url, err: &reqwest::Error) -> Error {
        Error::Unreachable {
            addr: host_port(url),
            url: url.to_string(),
            cause: transport_cause(err),
        }
    }

    /// Runs one typed operation; GraphQL errors become [`Error::Api`] with their code.
    pub async fn run<Q: GraphQLQuery>(&self, variables: Q::Variables) -> Result<Q::ResponseData> {
        let body = Q::build_query(variables);
        let mut req = self.http.post(self.endpoint.clone()).json(&body);
        if let Some(token) = &self.token {
            req = req.bearer_auth(token.expose_secret());
        }
        let resp = req
            .send()
            .await
            .map_err(|e| self.unreachable(&self.endpoint, &e))?;
        let status = resp.status().as_u16();
        let text = resp
            .text()
            .await
            .map_err(|e| self.unreachable(&self.endpoint, &e))?;
        let parsed: graphql_client::Response<Q::ResponseData> = match serde_json::from_str(&text) {
            Ok(p) => p,
            Err(_) => {
                return Err(Error::NotGraphql {
                    url: self.endpoint.to_string(),
                    status,
                    body: text.chars().take(200).collect(),
                });
            }
        };
        if let Some(first) = parsed.errors.as_ref().and_then(|e| e.first()) {
            let code = first
                .extensions
                .as_ref()
                .and_then(|x| x.get("code"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            return Err(Error::Api {
                code,
                message: first.message.clone(),
            });
        }
        parsed.data.ok_or_else(|| Error::NotGraphql {
            url: self.endpoint.to_string(),
            status,
            body: "no data and no errors".into(),
        })
    }

    /// `GET /readyz`: `Ok((true, body))` when ready, `Ok((false, body))` with the reason when not.
    pub async fn ready(&self) -> Result<(bool, Value)> {
        let mut url = self.endpoint.clone();
        let base = url
            .path()
            .trim_end_matches('/')
            .trim_end_matches("/graphql")
            .to_string();
        url.set_path(&format!("{base}/readyz"));
        let resp = self
            .http
            .get(url.clone())
            .send()
            .await
            .map_err(|e| self.unreachable(&url, &e))?;
        let ok = resp.status().is_success();
        let body = resp.json::<Value>().await.unwrap_or(Value::Null);
        Ok((ok, body))
    }

    /// Subscribes to `Q` over graphql-transport-ws at `<endpoint>/ws` and calls `on_event` with
    /// each payload until it returns `false` or the server ends the stream.
    pub async fn subscribe<Q: GraphQLQuery>(
        &self,
        variables: Q::Variables,
        mut on_event: impl FnMut(Q::ResponseData) -> bool,
    ) -> Result<()> {
        let mut url = self.endpoint.clone();
        let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
        url.set_scheme(scheme)
            .map_err(|()| Error::Watch("cannot form the WebSocket URL".into()))?;
        let path = format!("{}/ws", url.path().trim_end_matches('/'));
        url.set_path(&path);
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|e| Error::Watch(e.to_string()))?;
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            tungstenite::http::HeaderValue::from_static("graphql-transport-ws"),
        );
        let auth = self
            .token
            .as_ref()
            .map(|t| format!("Bearer {}", t.expose_secret()));
        let (mut ws, _) = tokio_tungstenite::connect_async(request)
            .await
            .map_err(|e| Error::Watch(format!("{url}: {e}")))?;
        let send = |v: Value| tungstenite::Message::Text(v.to_string().into());
        ws.send(send(
            json!({"type": "connection_init", "payload": {"Authorization": auth}}),
        ))
        .await
        .map_err(|e| Error::Watch(e.to_string()))?;
        let body = serde_json::to_value(Q::build_query(variables))
            .map_err(|e| Error::Watch(e.to_string()))?;
        let mut subscribed = false;
        while let Some(msg) = ws.next().await {
            let msg = msg.map_err(|e| Error::Watch(e.to_string()))?;
            let text = match msg {
                tungstenite::Message::Text(t) => t.to_string(),
                tungstenite::Message::Close(_) => break,
                _ => continue,
            };
            let v: Value = serde_json::from_str(&text).map_err(|e| Error::Watch(e.to_string()))?;
            match v["type"].as_str().unwrap_or_default() {
                "connection_ack" if !subscribed => {
                    subscribed = true;
                    ws.send(send(
                        json!({"id": "1", "type": "subscribe", "payload": body}),
                    ))
                    .await
                    .map_err(|e| Error::Watch(e.to_string()))?;
                }
                "ping" => {
                    ws.send(send(json!({"type": "pong"})))
                        .await
                        .map_err(|e| Error::Watch(e.to_string()))?;
                }
                "next" => {
                    let resp: graphql_client::Response<Q::ResponseData> =
                        serde_json::from_value(v["payload"].clone())
                            .map_err(|e| Error::Watch(e.to_string()))?;
                    if let Some(err) = resp.errors.as_ref().and_then(|e| e.first()) {
                        return Err(Error::Watch(err.message.clone()));
                    }
                    if let Some(data) = resp.data
                        && !on_event(data)
                    {
                        break;
                    }
                }
                "error" => return Err(Error::Watch(v["payload"].to_string())),
                "complete" => break,
                _ => {}
            }
        }
        let _ = ws.close(None).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_become_graphql_endpoints() {
        let e = |s| endpoint(s).map(|u| u.to_string());
        assert_eq!(
            e("http://127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080/graphql"
        );
        assert_eq!(
            e("127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080/graphql"
        );
        assert_eq!(
            e("https://lp.example/").unwrap(),
            "https://lp.example/graphql"
        );
        assert_eq!(
            e("https://lp.example/x/graphql").unwrap(),
            "https://lp.example/x/graphql"
        );
        assert!(matches!(endpoint("ftp://x"), Err(Error::BadUrl { .. })));
    }

    #[tokio::test]
    async fn a_refused_connection_names_the_address() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let client = Client::new(
            &format!("http://127.0.0.1:{port}"),
            None,
            Duration::from_secs(5),
        )
        .unwrap();
        let err = client
            .run::<crate::ops::Whoami>(crate::ops::whoami::Variables)
            .await;
        let text = err.unwrap_err().to_string();
        assert!(
            text.contains(&format!("127.0.0.1:{port}")) && text.contains("connection refused"),
            "{text}"
        );
    }
}
