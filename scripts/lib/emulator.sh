# Sourced by scripts/test and scripts/bench: starts the DynamoDB emulator on a free loopback
# port, creates the table from template.yaml, exports TEST_DYNAMODB_ENDPOINT and TEST_TABLE_NAME,
# and stops the emulator when the calling script exits (failure included).
start_dynamodb_emulator() {
  local venv_bin="$PWD/.venv/bin" port
  echo "==> starting the DynamoDB emulator (moto, one request at a time: scripts/dynamodb_emulator.py)"
  port=$("$venv_bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p target
  "$venv_bin/python" scripts/dynamodb_emulator.py "$port" > target/moto.log 2>&1 &
  EMULATOR_PID=$!
  trap 'kill "$EMULATOR_PID" 2>/dev/null || true; wait "$EMULATOR_PID" 2>/dev/null || true' EXIT
  wait_for_port "$port" "the DynamoDB emulator did not start; see target/moto.log"
  export TEST_DYNAMODB_ENDPOINT="http://127.0.0.1:$port"
  export TEST_TABLE_NAME="users-test"
  "$venv_bin/python" scripts/create_table.py template.yaml "$TEST_DYNAMODB_ENDPOINT" "$TEST_TABLE_NAME"
}

# IAM in front of the emulator (target/debug/iam-proxy, built by `cargo build --workspace --bins`):
# each call is allowed only what the policy in template.yaml of the function that signed it
# grants. Points TEST_DYNAMODB_ENDPOINT at it, exports IAM_USAGE_FILE (every access a function
# made), and stops it with the emulator.
start_iam_proxy() {
  local port emulator="$TEST_DYNAMODB_ENDPOINT"
  port=$("$PWD/.venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  export IAM_USAGE_FILE="$PWD/target/iam-usage.jsonl"
  rm -f "$IAM_USAGE_FILE"
  echo "==> starting the IAM proxy before the emulator (each function's policy from template.yaml)"
  target/debug/iam-proxy "127.0.0.1:$port" "$emulator" "$TEST_TABLE_NAME" "$IAM_USAGE_FILE" > target/iam-proxy.log 2>&1 &
  IAM_PROXY_PID=$!
  trap 'kill "$IAM_PROXY_PID" "$EMULATOR_PID" 2>/dev/null || true; wait "$EMULATOR_PID" 2>/dev/null || true' EXIT
  wait_for_port "$port" "the IAM proxy did not start; see target/iam-proxy.log"
  export TEST_DYNAMODB_ENDPOINT="http://127.0.0.1:$port"
}

# Waits up to 30 s for something to listen on loopback port $1; else fails with message $2.
wait_for_port() {
  "$PWD/.venv/bin/python" - "$1" "$2" <<'PY'
import socket, sys, time
deadline = time.time() + 30
while time.time() < deadline:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(sys.argv[2])
PY
}
