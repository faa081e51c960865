//! Set-up shared by kubesim's integration tests: one simulated cluster, `east`.

// Each test file uses the helpers it needs; set-up failures panic like the tests themselves.
#![allow(dead_code, clippy::unwrap_used)]

use kubesim::{SimCluster, SimOptions, Simulator};

/// A simulator with one cluster `east`, with the default watch event window. Keep the temp
/// dir alive as long as the simulator (it holds the kubeconfigs and certificates).
pub async fn sim() -> (Simulator, SimCluster, tempfile::TempDir) {
    sim_with_window(SimOptions::default().event_window).await
}

/// The same with `window` events kept for watches resuming from a resourceVersion (older ones
/// get `410 Gone`).
pub async fn sim_with_window(window: usize) -> (Simulator, SimCluster, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(SimOptions {
        clusters: vec!["east".into()],
        dir: dir.path().to_path_buf(),
        event_window: window,
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let east = sim.cluster("east").unwrap();
    (sim, east, dir)
}
