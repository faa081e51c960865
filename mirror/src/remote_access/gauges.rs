//! The credentials' metrics (`linkplane_remote_credential_*`), a leaf the crate's [`Metrics`]
//! holds.
//!
//! [`Metrics`]: crate::Metrics

use linkplane_store::remote_credentials::RemoteCredentialState;

/// `source_cluster` and `target_cluster` labels.
pub(crate) fn labels(source: &str, target: &str) -> Vec<(&'static str, String)> {
    vec![
        ("source_cluster", source.to_string()),
        ("target_cluster", target.to_string()),
    ]
}

/// Metrics of the credentials, by `source_cluster` and `target_cluster`.
#[derive(Debug, Clone, Default)]
pub struct RemoteAccessMetrics {
    /// `linkplane_remote_credential_state{source_cluster,target_cluster,state}`: 1 for the
    /// current state, 0 for the others.
    pub state: prometheus_client::metrics::family::Family<
        Vec<(&'static str, String)>,
        prometheus_client::metrics::gauge::Gauge,
    >,
    /// `linkplane_remote_credential_expiry_timestamp_seconds`: when the token in the Secret
    /// expires (Unix seconds).
    pub expiry: prometheus_client::metrics::family::Family<
        Vec<(&'static str, String)>,
        prometheus_client::metrics::gauge::Gauge,
    >,
    /// `linkplane_remote_credential_tokens_issued`: TokenRequests made.
    pub issued: prometheus_client::metrics::family::Family<
        Vec<(&'static str, String)>,
        prometheus_client::metrics::counter::Counter,
    >,
    /// `linkplane_remote_credential_errors`: failed passes.
    pub errors: prometheus_client::metrics::family::Family<
        Vec<(&'static str, String)>,
        prometheus_client::metrics::counter::Counter,
    >,
}

impl RemoteAccessMetrics {
    pub(crate) fn register(&self, r: &mut prometheus_client::registry::Registry) {
        r.register(
            "linkplane_remote_credential_state",
            "State of the remote-discovery credentials Secret of each (source, target) pair",
            self.state.clone(),
        );
        r.register(
            "linkplane_remote_credential_expiry_timestamp_seconds",
            "When the token in each remote-discovery credentials Secret expires",
            self.expiry.clone(),
        );
        r.register(
            "linkplane_remote_credential_tokens_issued",
            "Remote-discovery tokens issued (TokenRequest)",
            self.issued.clone(),
        );
        r.register(
            "linkplane_remote_credential_errors",
            "Failed passes provisioning remote-discovery credentials",
            self.errors.clone(),
        );
    }

    pub(crate) fn set_state(&self, source: &str, target: &str, state: RemoteCredentialState) {
        for &s in RemoteCredentialState::ALL {
            let mut l = labels(source, target);
            l.push(("state", s.as_str().to_string()));
            self.state.get_or_create(&l).set(i64::from(s == state));
        }
    }

    /// The current state of a pair (tests and benches).
    pub fn state_of(&self, source: &str, target: &str) -> Option<RemoteCredentialState> {
        RemoteCredentialState::ALL.iter().copied().find(|s| {
            let mut l = labels(source, target);
            l.push(("state", s.as_str().to_string()));
            self.state.get(&l).is_some_and(|g| g.get() == 1)
        })
    }

    pub(crate) fn forget(&self, source: &str, target: &str) {
        for &s in RemoteCredentialState::ALL {
            let mut l = labels(source, target);
            l.push(("state", s.as_str().to_string()));
            self.state.remove(&l);
        }
        self.expiry.remove(&labels(source, target));
    }
}
