//! Flags of the HTTP API (GraphQL, limits, CORS, TLS, credentials key, bootstrap token),
//! flattened into `linkplane serve`.

use std::path::PathBuf;

use clap::Args;
use secrecy::SecretString;

/// HTTP API options: limits and CORS under the "HTTP" heading, TLS, the credentials key and the
/// bootstrap token under "Security".
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "HTTP")]
pub struct ApiArgs {
    /// Origins allowed by CORS (comma-separated, e.g. `https://dash.example.com`); `*` allows any
    /// origin. Empty: no CORS headers (same-origin callers only).
    #[arg(
        long,
        env = "LINKPLANE_CORS_ALLOWED_ORIGINS",
        value_delimiter = ',',
        default_value = ""
    )]
    pub cors_allowed_origins: Vec<String>,
    /// Seconds a request may take before it is answered 408 (WebSocket subscriptions are exempt
    /// once upgraded).
    #[arg(long, env = "LINKPLANE_REQUEST_TIMEOUT_SECONDS", default_value_t = 30)]
    pub request_timeout_seconds: u64,
    /// Largest accepted API request body, in bytes (2 MiB: a 1 MiB kubeconfig, JSON-escaped).
    #[arg(long, env = "LINKPLANE_MAX_BODY_BYTES", default_value_t = 2 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Deepest GraphQL selection accepted.
    #[arg(long, env = "LINKPLANE_GRAPHQL_MAX_DEPTH", default_value_t = 12)]
    pub graphql_max_depth: usize,
    /// Highest GraphQL complexity accepted (1 per field, times the page size under paged
    /// fields). The default admits a dashboard's `clusters → mirrors → node` at default page
    /// sizes (100 × 100 mirrors with ~18 fields each).
    #[arg(
        long,
        env = "LINKPLANE_GRAPHQL_MAX_COMPLEXITY",
        default_value_t = 200_000
    )]
    pub graphql_max_complexity: usize,
    /// Deepest selection of an introspection-only query (root fields `__schema`, `__type`,
    /// `__typename`), counted apart from --graphql-max-depth so GraphiQL's, Apollo's and
    /// graphql-js's introspection queries (15 deep) pass.
    #[arg(
        long,
        env = "LINKPLANE_GRAPHQL_MAX_INTROSPECTION_DEPTH",
        default_value_t = 20
    )]
    pub graphql_max_introspection_depth: usize,
    /// Largest GraphQL query document accepted, in bytes.
    #[arg(long, env = "LINKPLANE_GRAPHQL_MAX_QUERY_BYTES", default_value_t = 32 * 1024)]
    pub graphql_max_query_bytes: usize,
    /// Do not serve the GraphiQL page on `GET /graphql`.
    #[arg(long, env = "LINKPLANE_NO_GRAPHIQL", default_value_t = false)]
    pub no_graphiql: bool,
    /// PEM certificate chain; with --tls-key-file, serve HTTPS (rustls) instead of HTTP.
    #[arg(
        help_heading = "Security",
        long,
        env = "LINKPLANE_TLS_CERT_FILE",
        requires = "tls_key_file"
    )]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of --tls-cert-file.
    #[arg(
        help_heading = "Security",
        long,
        env = "LINKPLANE_TLS_KEY_FILE",
        requires = "tls_cert_file"
    )]
    pub tls_key_file: Option<PathBuf>,
    /// File holding the 32-byte key that encrypts kubeconfigs set through the API (64 hex digits
    /// or base64, e.g. `openssl rand -base64 32`). Without a key `setClusterCredentials` answers
    /// UNAVAILABLE.
    #[arg(
        help_heading = "Security",
        long,
        env = "LINKPLANE_CREDENTIALS_KEY_FILE",
        conflicts_with = "credentials_key"
    )]
    pub credentials_key_file: Option<PathBuf>,
    /// The same key inline (hex or base64), for environments that inject secrets as variables.
    #[arg(
        help_heading = "Security",
        long,
        env = "LINKPLANE_CREDENTIALS_KEY",
        hide_env_values = true
    )]
    pub credentials_key: Option<SecretString>,
    /// An admin token to store (hashed) at start-up, so a fresh install (Helm) has a first token.
    /// At least 32 characters. Revoking it with `linkplane token revoke` sticks across restarts.
    #[arg(
        help_heading = "Security",
        long,
        env = "LINKPLANE_BOOTSTRAP_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub bootstrap_admin_token: Option<SecretString>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        api: ApiArgs,
    }

    #[test]
    fn defaults_and_lists() {
        let t = T::try_parse_from(["t", "--cors-allowed-origins", "https://a,https://b"]).unwrap();
        assert_eq!(t.api.cors_allowed_origins, ["https://a", "https://b"]);
        assert_eq!(t.api.graphql_max_depth, 12);
        assert!(t.api.tls_cert_file.is_none());
        assert!(
            T::try_parse_from(["t", "--tls-cert-file", "c.pem"]).is_err(),
            "key required"
        );
    }

    #[test]
    fn secrets_do_not_print() {
        let t = T::try_parse_from([
            "t",
            "--credentials-key",
            "c2VjcmV0LWtleS1ieXRlcw==",
            "--bootstrap-admin-token",
            "hunter2hunter2hunter2hunter2hunter2",
        ])
        .unwrap();
        let shown = format!("{:?}", t.api);
        assert!(!shown.contains("c2VjcmV0") && !shown.contains("hunter2"));
    }
}
