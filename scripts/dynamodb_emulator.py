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
"""
import copy
import sys
import threading
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


def main(port):
    snapshot_rollback()
    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def one_at_a_time(environ, start_response):
        with lock:
            return list(app(environ, start_response))

    run_simple("127.0.0.1", int(port), one_at_a_time, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
