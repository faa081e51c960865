# shellcheck shell=bash
# The browser tests' tools: Debian's Chromium and the playwright-core driver (tests/browser).
#
# Sourced:   browser_setup   installs what is missing, then exports LINKPLANE_CHROMIUM (the browser)
#                            or, only when the browser cannot be installed, LINKPLANE_BROWSER_SKIP
#                            (the reason) after a LOUD message. Never fails the caller.
# Executed:  scripts/lib/browser.sh   the same; prints the browser's path, exits 1 when unavailable.
#
# Chromium comes from Debian's `chromium` package (apt-get, as root), never from a browser
# download: playwright-core drives it over CDP. The driver is installed by `npm ci` from
# tests/browser/package-lock.json.

_browser_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

_browser_say() { echo "==> $*" >&2; }

_browser_loud() {
  {
    echo
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
    echo "!!! BROWSER TESTS WILL BE SKIPPED: $*"
    echo "!!! (tests/browser.rs passes without running the dashboard in a browser)"
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
    echo
  } >&2
}

_browser_find() {
  local c
  for c in "${LINKPLANE_CHROMIUM:-}" /usr/bin/chromium /usr/bin/chromium-browser; do
    if [ -n "$c" ] && [ -x "$c" ]; then echo "$c"; return 0; fi
  done
  return 1
}

_browser_apt() {
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 || return 1
  _browser_say "installing $* (apt-get)"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null) >&2
}

browser_setup() {
  unset LINKPLANE_BROWSER_SKIP
  local chromium
  if ! chromium="$(_browser_find)"; then
    _browser_apt chromium || true
    chromium="$(_browser_find)" || {
      export LINKPLANE_BROWSER_SKIP="Debian's chromium package is not installed and could not be installed (apt-get install -y chromium, as root)"
      _browser_loud "$LINKPLANE_BROWSER_SKIP"
      return 0
    }
  fi
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    _browser_apt nodejs npm || true
  fi
  if ! command -v npm >/dev/null 2>&1; then
    export LINKPLANE_BROWSER_SKIP="node/npm are missing and could not be installed (apt-get install -y nodejs npm)"
    _browser_loud "$LINKPLANE_BROWSER_SKIP"
    return 0
  fi
  local driver="$_browser_root/tests/browser"
  if [ ! -f "$driver/node_modules/.package-lock.json" ] ||
    [ "$driver/package-lock.json" -nt "$driver/node_modules/.package-lock.json" ]; then
    _browser_say "npm ci (tests/browser: playwright-core)"
    (cd "$driver" && npm ci --no-audit --no-fund --loglevel=error >&2) || {
      export LINKPLANE_BROWSER_SKIP="npm ci in tests/browser failed (playwright-core from the npm registry)"
      _browser_loud "$LINKPLANE_BROWSER_SKIP"
      return 0
    }
  fi
  export LINKPLANE_CHROMIUM="$chromium"
  _browser_say "browser tests: $("$chromium" --version 2>/dev/null | head -1) at $chromium"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  browser_setup
  [ -z "${LINKPLANE_BROWSER_SKIP:-}" ] || exit 1
  echo "$LINKPLANE_CHROMIUM"
fi
