"""Server side of request signing: refuse anything the real API would answer 401.

The signing string is rebuilt with the client's own `batch_share.send.auth.signing_string`, so
the two sides share one recipe; what this module adds is the server's suspicion.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from datetime import UTC
from email.utils import parsedate_to_datetime

from batch_share.send.auth import signature, signing_string

MAX_CLOCK_SKEW = 300.0
# Without these signed a captured request could be replayed to another path or host, or
# forever; the real API insists on them too.
REQUIRED_SIGNED_HEADERS = ("(request-target)", "host", "date")
_PARAM = re.compile(r'\s*(\w+)\s*=\s*(?:"([^"]*)"|([^,]*))\s*(?:,|$)')


def _parameters(authorization: str) -> dict[str, str] | None:
    """`keyId="..",algorithm=".."` -> dict, or None if it is not a Signature header."""
    scheme, _, rest = authorization.strip().partition(" ")
    if scheme.lower() != "signature":
        return None
    return {
        m.group(1): m.group(2) if m.group(2) is not None else m.group(3).strip()
        for m in _PARAM.finditer(rest)
    }


def _date_problem(date: str, now: float) -> str | None:
    try:
        sent = parsedate_to_datetime(date)
    except (TypeError, ValueError):
        return "the Date header is not an HTTP date"
    if sent.tzinfo is None:
        sent = sent.replace(tzinfo=UTC)
    if abs(sent.timestamp() - now) > MAX_CLOCK_SKEW:
        return "the Date header is more than 5 minutes away from the server's clock"
    return None


def refusal(
    *,
    method: str,
    target: str,
    headers: Mapping[str, str],
    body: bytes,
    secrets: Mapping[str, bytes],
    now: float,
) -> str | None:
    """Why this request must be refused, or None when its signature holds.

    `target` is the path with any query string, as sent; `headers` is keyed by lower-case
    name; `secrets` maps key id -> decoded secret.
    """
    authorization = headers.get("authorization")
    if authorization is None:
        return "missing Authorization header"
    params = _parameters(authorization)
    if params is None or "signature" not in params or "keyId" not in params:
        return "the Authorization header must be an HTTP Signature with keyId and signature"
    secret = secrets.get(params["keyId"])
    if secret is None:
        return "unknown access key id"
    if params.get("algorithm", "hmac-sha256").lower() != "hmac-sha256":
        return "unsupported signature algorithm; use hmac-sha256"
    names = tuple(params.get("headers", "date").lower().split())
    missing_from_list = [name for name in REQUIRED_SIGNED_HEADERS if name not in names]
    if missing_from_list:
        return f"the signature must cover {', '.join(missing_from_list)}"
    absent = [n for n in names if n != "(request-target)" and n not in headers]
    if absent:
        return f"signed header {absent[0]} is missing from the request"
    date_problem = _date_problem(headers["date"], now)
    if date_problem:
        return date_problem
    if "content-length" in names and headers["content-length"].strip() != str(len(body)):
        return "content-length does not match the body"
    expected = signature(secret, signing_string(method, target, dict(headers), names))
    if not hmac.compare_digest(expected.encode(), params["signature"].encode()):
        return "signature does not match"
    return None
