"""Re-signs a sample webhook event of events/ for now, as Stripe would.

Usage: sign_webhook_event.py EVENT_FILE WEBHOOK_SECRET > signed.json

The `Stripe-Signature` header is valid for 300 s only, so a sample event must be signed just
before it is invoked (e.g. with `cargo lambda invoke --data-file signed.json stripe-webhook`).
"""
import base64
import hashlib
import hmac
import json
import sys
import time


def main(path, secret):
    with open(path, encoding="utf-8") as f:
        event = json.load(f)
    body = event["body"]
    raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
    t = str(int(time.time()))
    sig = hmac.new(secret.encode(), t.encode() + b"." + raw, hashlib.sha256).hexdigest()
    event["headers"]["stripe-signature"] = f"t={t},v1={sig}"
    json.dump(event, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(*sys.argv[1:])
