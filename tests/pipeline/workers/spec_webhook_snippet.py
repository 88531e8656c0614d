"""The signature check of the API spec ("Webhook Security"), copied verbatim.

Our deliveries must pass it unchanged, so it is kept exactly as a receiver
would paste it (formatter and import sorting off).
"""

# fmt: off
# isort: off
import hmac
import hashlib

def verify_webhook(payload, signature, secret):
    expected = hmac.new(
        secret.encode('utf-8'),
        payload.encode('utf-8'),
        hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(f"sha256={expected}", signature)
# isort: on
# fmt: on
