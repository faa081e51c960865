//! The dashboard in a real browser: Debian's headless Chromium driven by playwright-core
//! (`tests/browser/dashboard.test.mjs`, run with node's test runner) against a `linkplane dev`
//! started here, with admin, operator and viewer tokens.
//!
//! `scripts/test` installs the browser and the driver first (`scripts/lib/browser.sh`); run alone,
//! this test runs that script itself. Only where the browser cannot be installed does it skip,
//! with a loud message, so the Rust suite still passes on a machine without one.
//!
//! `LP_UPDATE_SCREENSHOT=1` also writes the screenshot to `docs/dashboard.png` (the README's).

use std::{
    path::PathBuf,
    process::{Command, Stdio},
};

use linkplane_e2e::{dev::DevEnv, repo_root};

/// The browser binary, or why there is none (after trying to install it).
fn chromium() -> Result<PathBuf, String> {
    if let Ok(reason) = std::env::var("LINKPLANE_BROWSER_SKIP") {
        return Err(reason);
    }
    let driver = repo_root().join("tests/browser/node_modules/playwright-core");
    if let Some(path) = std::env::var_os("LINKPLANE_CHROMIUM").map(PathBuf::from)
        && path.is_file()
        && driver.is_dir()
    {
        return Ok(path);
    }
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/lib/browser.sh"))
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("running scripts/lib/browser.sh: {e}"))?;
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if out.status.success() && !path.is_empty() {
        Ok(PathBuf::from(path))
    } else {
        Err("scripts/lib/browser.sh could not install Chromium and the driver".into())
    }
}

fn skip_loudly(reason: &str) {
    let bar = "!".repeat(96);
    eprintln!("\n{bar}\n!!! BROWSER TESTS SKIPPED: {reason}\n{bar}\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_a_real_browser() {
    let browser = match chromium() {
        Ok(path) => path,
        Err(reason) => return skip_loudly(&reason),
    };
    let env = DevEnv::start();
    let operator = env.token("operator");
    let viewer = env.token("viewer");
    let out_dir = repo_root().join("target/browser");
    std::fs::create_dir_all(&out_dir).expect("target/browser");
    let output = Command::new("node")
        .args([
            "--test",
            "--test-concurrency=1",
            "--test-reporter=spec",
            "dashboard.test.mjs",
        ])
        .current_dir(repo_root().join("tests/browser"))
        .env("LP_URL", env.base_url())
        .env("LP_ADMIN_TOKEN", &env.facts.token)
        .env("LP_OPERATOR_TOKEN", &operator)
        .env("LP_VIEWER_TOKEN", &viewer)
        .env("LP_KUBESIM_ADMIN", &env.facts.admin_url)
        .env("LP_REPO", &env.facts.repo_path)
        .env("LP_WEBHOOK_URL", &env.facts.webhook_url)
        .env("LP_WEBHOOK_SECRET", &env.facts.webhook_secret)
        .env("LP_CHROMIUM", &browser)
        .env("LP_OUT", &out_dir)
        .stdin(Stdio::null())
        .output()
        .expect("node runs (scripts/lib/browser.sh installs it)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Shown with --nocapture, and in the failure message otherwise.
    println!("{stdout}\n{stderr}");
    assert!(
        output.status.success(),
        "browser tests failed:\n{stdout}\n{stderr}\n--- linkplane dev ---\n{}",
        env.log()
    );
    // node's closing summary: `ℹ pass N` (and `ℹ skipped N`, `ℹ fail N`).
    let count = |what: &str| {
        stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix(&format!("ℹ {what} ")))
            .and_then(|n| n.trim().parse::<u32>().ok())
            .unwrap_or(0)
    };
    assert!(count("pass") > 0, "node ran no test:\n{stdout}");
    assert_eq!(count("fail"), 0, "{stdout}");
    if count("skipped") > 0 {
        eprintln!(
            "note: {} browser test(s) skipped (see above)",
            count("skipped")
        );
    }
}
