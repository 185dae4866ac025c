"""Runs moto's DynamoDB on loopback with requests applied one at a time.

Usage: dynamodb_emulator.py PORT

DynamoDB applies each single-item write atomically (a conditional put either wins or fails
as a whole). moto's threaded server does not: two concurrent `attribute_not_exists` puts can
both succeed. This wrapper keeps moto's threaded server (connections are accepted
concurrently) but applies requests one at a time, so conditional writes race the way they
do on DynamoDB.

moto also deep-copies every table a transaction touches, to roll it back on failure: O(table
size) per TransactWriteItems, seconds per debit once the suite has filled the table. Since
requests are applied one at a time here, a snapshot of just the items a transaction touches
rolls it back exactly as well (`snapshot_rollback`).

moto ignores TransactWriteItems' ClientRequestToken. DynamoDB documents it: "multiple identical
calls have the same effect as one single call", for 10 minutes after the first completes, and
the same token with other parameters is refused with IdempotentParameterMismatchException.
`Idempotency` answers a repeated successful transaction with its first answer, as DynamoDB
does (an SDK retry after a lost reply), and refuses a changed one.
"""
import copy
import hashlib
import io
import json
import sys
import threading
import time
import types

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


def snapshot_rollback():
    """TransactWriteItems rolled back from per-item snapshots instead of whole-table copies."""
    # moto's transaction code then keeps the live table as its "backup" (a no-op rollback)...
    dynamodb_models.copy = types.SimpleNamespace(
        deepcopy=lambda obj, memo=None: obj if isinstance(obj, Table) else copy.deepcopy(obj, memo)
    )
    original = DynamoDBBackend.transact_write_items

    def transact_write_items(self, transact_items):
        # ...and the items the transaction touches are restored from these snapshots.
        touched = []
        for entry in transact_items:
            kind, op = next(iter(entry.items()))
            table = self.tables.get(op.get("TableName"))
            if table is None:
                continue
            if kind == "Put":
                names = [n for n in (table.hash_key_attr, table.range_key_attr) if n]
                key = {n: op["Item"][n] for n in names if n in op.get("Item", {})}
            else:
                key = op.get("Key")
            try:
                before = self.get_item(table.name, key)
            except Exception:  # an invalid key: moto's own checks reject the transaction
                continue
            touched.append((table.name, key, before and copy.deepcopy(before.to_json()["Attributes"])))
        try:
            return original(self, transact_items)
        except Exception:
            for table_name, key, attributes in reversed(touched):
                if attributes is None:
                    self.delete_item(table_name, key)
                else:
                    self.put_item(table_name, attributes)
            raise

    DynamoDBBackend.transact_write_items = transact_write_items


class Idempotency:
    """ClientRequestToken of TransactWriteItems, as DynamoDB documents it (module docs)."""

    WINDOW_SECS = 600
    TARGET = "DynamoDB_20120810.TransactWriteItems"

    def __init__(self, app):
        self.app = app
        self.done = {}  # token -> (parameters digest, completed at, status, headers, body)

    def __call__(self, environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET") != self.TARGET:
            return list(self.app(environ, start_response))
        raw = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(raw)
        try:
            request = json.loads(raw or b"{}")
        except ValueError:
            return list(self.app(environ, start_response))
        token = request.pop("ClientRequestToken", None)
        if not token:
            return list(self.app(environ, start_response))
        digest = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()
        now = time.time()
        self.done = {t: d for t, d in self.done.items() if now - d[1] < self.WINDOW_SECS}
        if token in self.done:
            first_digest, _, status, headers, body = self.done[token]
            if first_digest != digest:
                body = json.dumps({
                    "__type": "com.amazonaws.dynamodb.v20120810#IdempotentParameterMismatchException",
                    "message": "Request parameters do not match a previous request with the same client token",
                }).encode()
                start_response("400 Bad Request", [("Content-Type", "application/x-amz-json-1.0")])
                return [body]
            start_response(status, headers)
            return [body]
        answered = {}

        def remember(status, headers, exc_info=None):
            answered.update(status=status, headers=list(headers))
            return start_response(status, headers, exc_info)

        body = b"".join(self.app(environ, remember))
        if answered.get("status", "").startswith("200"):
            self.done[token] = (digest, time.time(), answered["status"], answered["headers"], body)
        return [body]


def main(port):
    snapshot_rollback()
    app = Idempotency(DomainDispatcherApplication(create_backend_app))
    lock = threading.Lock()

    def one_at_a_time(environ, start_response):
        with lock:
            return list(app(environ, start_response))

    run_simple("127.0.0.1", int(port), one_at_a_time, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
