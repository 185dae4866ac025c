#!/usr/bin/env bash
# Installs the pinned test tools into .venv (idempotent): moto's DynamoDB server,
# cfn-lint, and cargo-lambda. Everything comes from PyPI; nothing is installed globally.
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
