"""Credentials and remote.it request signing (draft-cavage HTTP signatures, HMAC-SHA256).

The signing primitives are shared with the emulator's verifier, so client and server can
never drift apart on the recipe.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

SIGNED_HEADERS: tuple[str, ...] = (
    "(request-target)",
    "host",
    "date",
    "content-type",
    "content-length",
)


def signing_string(method: str, path: str, headers: dict[str, str], names: tuple[str, ...]) -> str:
    """The text that gets signed: one `name: value` line per signed header, no trailing newline.

    `headers` must be keyed by lower-case header name; `path` includes any query string.
    """
    lines = []
    for name in names:
        value = f"{method.lower()} {path}" if name == "(request-target)" else headers[name]
        lines.append(f"{name}: {value}")
    return "\n".join(lines)


def signature(secret_key: bytes, text: str) -> str:
    """base64(HMAC-SHA256(key, text)); `secret_key` is the *decoded* secret."""
    digest = hmac.new(secret_key, text.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")
