//! Gateway address resolution and liveness probes, one prober per target cluster shared by every
//! link into it (linkerd-compat §6).
//!
//! Every probe period the worker re-resolves the target gateway's addresses (IPs as-is, DNS
//! names to all A/AAAA records, sorted, failures skipped while one resolves) and, when a probe
//! path is set, GETs `http://<first address>:<probe.port><probe.path>`. Only transitions (alive
//! ↔ dead, address set changed) trigger a repair of the link's mirrors, immediately — so changes
//! reach every Endpoints within one probe period.

use std::{net::IpAddr, sync::Arc, time::Instant};

use linkplane_core::{GatewaySpec, plan::GatewayView};

use crate::{Metrics, shared::Shared};

/// Resolves gateway addresses: IP literals as-is, names to all their addresses; sorted
/// lexicographically by string form and deduplicated. Entries that fail are skipped.
pub async fn resolve(addresses: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for a in addresses {
        if let Ok(ip) = a.parse::<IpAddr>() {
            out.push(ip.to_string());
            continue;
        }
        match tokio::net::lookup_host((a.as_str(), 0)).await {
            Ok(addrs) => out.extend(addrs.map(|s| s.ip().to_string())),
            Err(e) => tracing::warn!(address = %a, error = %e, "gateway address does not resolve"),
        }
    }
    out.sort();
    out.dedup();
    out
}

/// IP literals of `addresses`, sorted: the view before the first resolution.
pub fn literal_addresses(addresses: &[String]) -> Vec<String> {
    let mut out: Vec<String> = addresses
        .iter()
        .filter_map(|a| a.parse::<IpAddr>().ok())
        .map(|ip| ip.to_string())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Probe state machine: initial alive; dead after `threshold` consecutive failures; alive again
/// after one success. Returns the new liveness when it changed.
#[derive(Debug, Clone)]
pub struct Liveness {
    alive: bool,
    failures: u32,
    threshold: u32,
}

impl Liveness {
    /// Starts alive (Linkerd's watcher does, to avoid failing fast on restart).
    pub fn new(threshold: u32) -> Self {
        Self {
            alive: true,
            failures: 0,
            threshold: threshold.max(1),
        }
    }

    /// Records one probe; `Some(alive)` on a transition.
    pub fn observe(&mut self, success: bool) -> Option<bool> {
        if success {
            self.failures = 0;
            if !self.alive {
                self.alive = true;
                return Some(true);
            }
        } else {
            self.failures += 1;
            if self.failures >= self.threshold && self.alive {
                self.alive = false;
                return Some(false);
            }
        }
        None
    }

    /// Current liveness.
    pub fn alive(&self) -> bool {
        self.alive
    }

    /// Consecutive failures.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

/// Runs the prober of target cluster `target`'s `gateway` until aborted: one per target,
/// shared by every link into it.
pub(crate) async fn run(shared: Arc<Shared>, target: String, gateway: GatewaySpec) {
    let probe = gateway.probe.clone();
    let labels = Metrics::target(&target);
    let m = &shared.metrics;
    m.gateway_enabled
        .get_or_create(&labels)
        .set(i64::from(!probe.path.is_empty()));
    m.gateway_alive.get_or_create(&labels).set(1);
    let http = reqwest::Client::builder()
        .timeout(probe.timeout.as_std())
        .build()
        .unwrap_or_default();
    let mut live = Liveness::new(probe.failure_threshold);
    let mut view = shared.gateway(&target);
    loop {
        let addresses = resolve(&gateway.addresses).await;
        let mut changed = false;
        if !addresses.is_empty() && addresses != view.addresses {
            tracing::info!(%target, ?addresses, "gateway addresses changed");
            view.addresses = addresses;
            changed = true;
        }
        if !probe.path.is_empty() {
            let result = match view.addresses.first() {
                Some(addr) => {
                    let host = match addr.parse::<IpAddr>() {
                        Ok(IpAddr::V6(v6)) => format!("[{v6}]"),
                        _ => addr.clone(),
                    };
                    let url = format!("http://{host}:{}{}", probe.port, probe.path);
                    let start = Instant::now();
                    match http.get(&url).send().await {
                        Ok(r) if r.status() == reqwest::StatusCode::OK => {
                            Ok(start.elapsed().as_secs_f64() * 1000.0)
                        }
                        Ok(r) => Err(format!("GET {url}: HTTP {}", r.status())),
                        Err(e) => Err(format!("GET {url}: {e}")),
                    }
                }
                None => Err("no gateway address resolved".to_string()),
            };
            let (success, latency, error) = match &result {
                Ok(ms) => (true, Some(*ms), None),
                Err(e) => (false, None, Some(e.as_str())),
            };
            if let Some(ms) = latency {
                m.gateway_latency.get_or_create(&labels).set(ms);
                m.gateway_probe_latency_ms
                    .get_or_create(&labels)
                    .observe(ms);
            }
            m.probe_windows.record(&target, latency);
            let transition = live.observe(success);
            if success || !live.alive() {
                let mut l = labels.clone();
                l.push(("probe_successful", success.to_string()));
                m.gateway_probes.get_or_create(&l).inc();
            }
            if let Some(alive) = transition {
                tracing::info!(%target, alive, "gateway liveness changed");
                m.gateway_alive.get_or_create(&labels).set(i64::from(alive));
                view.alive = alive;
                changed = true;
            }
            // The probe is the target's; each link into it shows it (`Link.gateway`).
            let links: Vec<String> = shared
                .snapshot()
                .links_targeting(&target)
                // Each link's health row is written by its source's owner (with leases).
                .filter(|l| shared.leases.may_write(&l.link.spec.source))
                .map(|l| l.link.name.clone())
                .collect();
            for link in &links {
                record(&shared, link, live.alive(), latency, live.failures(), error).await;
            }
        }
        if changed {
            shared.set_gateway(&target, view.clone());
            m.endpoint_repairs.get_or_create(&labels).inc();
            let links: Vec<String> = shared
                .snapshot()
                .links_targeting(&target)
                .map(|l| l.link.name.clone())
                .collect();
            for link in &links {
                shared.enqueue_link(link);
            }
        }
        let period = probe.period.as_std();
        let jitter = period.mul_f64(rand::random_range(0.0..0.1));
        tokio::time::sleep(period + jitter).await;
    }
}

async fn record(
    shared: &Shared,
    link: &str,
    alive: bool,
    latency: Option<f64>,
    failures: u32,
    error: Option<&str>,
) {
    let res = async {
        let mut conn = shared.store.acquire().await?;
        linkplane_store::gateways::record(&mut conn, link, alive, latency, failures as i32, error)
            .await
    }
    .await;
    if let Err(e) = res {
        tracing::debug!(%link, error = %e, "recording gateway health");
    }
}

/// The initial view of a link's gateway: IP literals, alive.
pub(crate) fn initial_view(gateway: Option<&GatewaySpec>) -> GatewayView {
    GatewayView {
        addresses: gateway
            .map(|g| literal_addresses(&g.addresses))
            .unwrap_or_default(),
        alive: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn liveness_starts_alive_dies_at_threshold_and_recovers_on_one_success() {
        let mut l = Liveness::new(3);
        assert!(l.alive());
        assert_eq!(l.observe(false), None);
        assert_eq!(l.observe(false), None);
        assert_eq!(l.observe(false), Some(false));
        assert_eq!(l.observe(false), None, "only transitions are reported");
        assert_eq!(l.observe(true), Some(true));
        assert_eq!(l.observe(true), None);
        assert_eq!(l.failures(), 0);
    }

    #[test]
    fn a_success_resets_the_failure_count() {
        let mut l = Liveness::new(2);
        l.observe(false);
        l.observe(true);
        assert_eq!(l.observe(false), None);
        assert_eq!(l.observe(false), Some(false));
    }

    #[tokio::test]
    async fn addresses_are_sorted_deduplicated_and_unresolvable_names_skipped() {
        let got = resolve(&[
            "10.0.0.9".into(),
            "does-not-exist.invalid".into(),
            "10.0.0.10".into(),
            "10.0.0.9".into(),
            "localhost".into(),
        ])
        .await;
        assert!(
            got.contains(&"127.0.0.1".to_string()) || got.contains(&"::1".to_string()),
            "{got:?}"
        );
        let mut sorted = got.clone();
        sorted.sort();
        assert_eq!(got, sorted);
        assert_eq!(got.iter().filter(|a| *a == "10.0.0.9").count(), 1);
        assert!(got.starts_with(&["10.0.0.10".to_string(), "10.0.0.9".to_string()]));
    }
}
