//! `linkplane dev` through the binary, for what happens before anything starts.
#![allow(clippy::unwrap_used)]
// `linkplane dev` exists only with the (default) `dev` feature.
#![cfg(feature = "dev")]

use std::{
    io::Read,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

/// Port 8080 taken by another server: `linkplane dev` used to print its "running" banner while
/// the readiness probe was answered by the other server. It must fail first, clearly, and
/// without starting anything.
#[test]
fn dev_refuses_a_busy_port_before_printing_any_banner() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let state = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_linkplane"))
        .args(["dev", "--port", &port.to_string(), "--state-dir"])
        .arg(state.path())
        // Never reached: the check comes before the database is used.
        .env("DATABASE_URL", "postgres://127.0.0.1:1/unused")
        .env("LINKPLANE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("linkplane dev kept running on a busy port");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!status.success(), "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!("port {port} on 127.0.0.1 is already in use")),
        "{stderr}"
    );
    assert!(!stdout.contains("running"), "{stdout}");
    // Nothing was started: no simulated clusters, no GitOps repository.
    assert!(!state.path().join("gitops").exists());
    assert!(!state.path().join("clusters").exists());
    drop(busy);
}
