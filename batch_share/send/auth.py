"""Credentials and remote.it request signing (draft-cavage HTTP signatures, HMAC-SHA256).

The signing primitives are shared with the emulator's verifier, so client and server can
never drift apart on the recipe.
"""

from __future__ import annotations

import base64
import binascii
import configparser
import hashlib
import hmac
import logging
import os
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path

import httpx

from batch_share.errors import CredentialsError

logger = logging.getLogger("batch_share")

SIGNED_HEADERS: tuple[str, ...] = (
    "(request-target)",
    "host",
    "date",
    "content-type",
    "content-length",
)

KEY_ID_VARIABLE = "R3_ACCESS_KEY_ID"
SECRET_VARIABLE = "R3_SECRET_ACCESS_KEY"  # noqa: S105 - a variable name, not a secret
PROFILE_VARIABLE = "R3_PROFILE"
DEFAULT_PROFILE = "default"


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


@dataclass(frozen=True, slots=True)
class Credentials:
    """An access key: `secret` is the decoded HMAC key; `source` says where it was found.

    The secret is kept out of `repr` (and so out of `str`, logs and tracebacks that show
    locals' reprs).
    """

    key_id: str
    secret: bytes = field(repr=False)
    source: str


def load_credentials(
    profile: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
    configured_profile: str | None = None,
) -> Credentials:
    """Find the access key.

    Order: an explicit `profile` (typed on the command line: the admin asked for it by
    name, so it wins over R3_* keys left in the environment, with a warning); else the
    R3_* keys in the environment; else the credentials file's profile named by R3_PROFILE,
    then `configured_profile` (a settings file), then `default`.

    Empty environment variables count as unset, as a shell's `VAR=` usually means "off".
    """
    env = os.environ if environ is None else environ
    key_id = env.get(KEY_ID_VARIABLE, "").strip()
    secret = env.get(SECRET_VARIABLE, "").strip()
    path = (Path.home() if home is None else home) / ".remoteit" / "credentials"
    if profile:
        if key_id or secret:
            logger.warning(
                "--profile %s wins over %s/%s in the environment",
                profile,
                KEY_ID_VARIABLE,
                SECRET_VARIABLE,
            )
        return _from_file(path, profile)
    if key_id or secret:
        return _from_environment(key_id, secret)
    chosen = env.get(PROFILE_VARIABLE, "").strip() or configured_profile or DEFAULT_PROFILE
    return _from_file(path, chosen)


def _from_environment(key_id: str, secret: str) -> Credentials:
    for name, value in ((KEY_ID_VARIABLE, key_id), (SECRET_VARIABLE, secret)):
        if not value:
            other = SECRET_VARIABLE if name == KEY_ID_VARIABLE else KEY_ID_VARIABLE
            raise CredentialsError(
                f"{other} is set but {name} is not: set both, "
                f"or unset {other} to use the credentials file"
            )
    source = "environment"
    return Credentials(key_id=key_id, secret=_decode_secret(secret, source), source=source)


def _from_file(path: Path, profile: str) -> Credentials:
    if not path.is_file():
        raise CredentialsError(
            f"no credentials: {KEY_ID_VARIABLE}/{SECRET_VARIABLE} are not set "
            f"and {path} does not exist"
        )
    _warn_if_shared(path)
    parser = _parse(path)
    section = _find_section(parser, path, profile)
    source = f"{path} [{section}]"
    values = parser[section]
    key_id = values.get(KEY_ID_VARIABLE, "").strip()
    secret = values.get(SECRET_VARIABLE, "").strip()
    for name, value in ((KEY_ID_VARIABLE, key_id), (SECRET_VARIABLE, secret)):
        if not value:
            raise CredentialsError(f"{source} has no {name}")
    return Credentials(key_id=key_id, secret=_decode_secret(secret, source), source=source)


def _warn_if_shared(path: Path) -> None:
    if os.name != "posix":
        return
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        logger.warning(
            "%s is accessible to other users (mode %s); run: chmod 600 %s", path, oct(mode), path
        )


def _parse(path: Path) -> configparser.ConfigParser:
    """Read the INI file; errors name the line but never quote it, as it may hold a secret."""
    # No interpolation: a `%` in a key must not be taken for a reference. configparser treats
    # a `[DEFAULT]` section as defaults for all others and hides it; here it must be a plain
    # profile that `default` finds, so the special name is moved out of reach.
    parser = configparser.ConfigParser(interpolation=None, default_section="\0")
    try:
        # utf-8-sig: Windows editors save a BOM, which would hide the first section header.
        text = path.read_text(encoding="utf-8-sig")
        parser.read_string(text, source=str(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise CredentialsError(f"cannot read {path}: {_os_reason(exc)}") from None
    except configparser.MissingSectionHeaderError as exc:
        raise CredentialsError(
            f"{path} line {exc.lineno}: expected a [profile] header before any key"
        ) from None
    except configparser.ParsingError as exc:
        lines = ", ".join(str(lineno) for lineno, _ in exc.errors)
        raise CredentialsError(
            f"{path}: cannot parse line {lines} (expected KEY = value)"
        ) from None
    except configparser.Error as exc:
        lineno = getattr(exc, "lineno", None)
        where = f" line {lineno}" if lineno else ""
        raise CredentialsError(f"{path}{where}: duplicate profile or key") from None
    return parser


def _os_reason(exc: OSError | UnicodeDecodeError) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    return exc.strerror or type(exc).__name__


def _find_section(parser: configparser.ConfigParser, path: Path, profile: str) -> str:
    """The section named `profile`, compared case-insensitively as remote.it's tools do."""
    sections = parser.sections()
    matches = [name for name in sections if name.casefold() == profile.casefold()]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise CredentialsError(
            f"{path} has several profiles named {profile!r} in different case: {', '.join(matches)}"
        )
    existing = ", ".join(sections) if sections else "none"
    raise CredentialsError(f"{path} has no profile {profile!r} (profiles: {existing})")


def _decode_secret(secret: str, source: str) -> bytes:
    try:
        return base64.b64decode(secret, validate=True)
    except binascii.Error:
        raise CredentialsError(f"{SECRET_VARIABLE} from {source} is not valid base64") from None


class SignatureAuth(httpx.Auth):
    """Signs every request with the access key, as remote.it's API requires.

    `now` is the clock used for the `Date` header, injectable so tests get fixed signatures.
    """

    # The signature covers content-length, so the body must be in memory before signing.
    requires_request_body = True

    def __init__(self, credentials: Credentials, *, now: Callable[[], float] = time.time) -> None:
        self._credentials = credentials
        self._now = now

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self.sign(request)
        yield request

    def sign(self, request: httpx.Request) -> None:
        """Set `Date` and `Authorization` on `request`, and pin the signed headers so that
        what goes on the wire is exactly what was signed."""
        body = request.content
        headers = request.headers
        # A streamed body would be chunked; it is in memory now, so send its exact length.
        headers.pop("transfer-encoding", None)
        headers["content-length"] = str(len(body))
        # The remote.it API only speaks JSON; a header must exist for the recipe to sign it.
        headers.setdefault("content-type", "application/json")
        headers["date"] = formatdate(self._now(), usegmt=True)
        # raw_path is the path plus query exactly as httpx writes it on the request line.
        target = request.url.raw_path.decode("ascii")
        signed = {name: headers[name] for name in SIGNED_HEADERS[1:]}
        text = signing_string(request.method, target, signed, SIGNED_HEADERS)
        headers["authorization"] = (
            f'Signature keyId="{self._credentials.key_id}",algorithm="hmac-sha256",'
            f'headers="{" ".join(SIGNED_HEADERS)}",'
            f'signature="{signature(self._credentials.secret, text)}"'
        )
