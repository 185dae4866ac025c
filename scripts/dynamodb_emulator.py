"""Runs moto's DynamoDB on loopback with requests applied one at a time.

Usage: dynamodb_emulator.py PORT

DynamoDB applies each single-item write atomically (a conditional put either wins or fails
as a whole). moto's threaded server does not: two concurrent `attribute_not_exists` puts can
both succeed. This wrapper keeps moto's threaded server (connections are accepted
concurrently) but applies requests one at a time, so conditional writes race the way they
do on DynamoDB.
"""
import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


def main(port):
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
