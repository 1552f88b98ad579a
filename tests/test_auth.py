"""Credentials loading and request signing, checked against the recipe in the API notes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
from pathlib import Path

import httpx
import pytest

from batch_share.errors import CredentialsError
from batch_share.send.auth import Credentials, SignatureAuth, load_credentials

SECRET_BYTES = b"batch-share fixed test key bytes"
SECRET_TEXT = base64.b64encode(SECRET_BYTES).decode("ascii")
CREDENTIALS = Credentials(key_id="test-key-id", secret=SECRET_BYTES, source="test")
# Tue, 24 Nov 2026 14:53:24 GMT, the date of the example in the API notes.
FIXED_NOW = 1795532004.0
FIXED_DATE = "Tue, 24 Nov 2026 14:53:24 GMT"
BODY = b'{"query":"query { login { email } }","variables":{}}'


def signed(request: httpx.Request, credentials: Credentials = CREDENTIALS) -> httpx.Request:
    """Run the auth flow as httpx's client does and return the request it would send."""
    flow = SignatureAuth(credentials, now=lambda: FIXED_NOW).sync_auth_flow(request)
    return next(flow)


def json_post(url: str, body: bytes = BODY) -> httpx.Request:
    return httpx.Request("POST", url, content=body, headers={"Content-Type": "application/json"})


def expected_signature(secret: bytes, lines: list[str]) -> str:
    """The notes' recipe, written out independently of batch_share.send.auth."""
    digest = hmac.new(secret, "\n".join(lines).encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def signature_of(request: httpx.Request) -> str:
    authorization = request.headers["authorization"]
    return authorization.rsplit('signature="', 1)[1].rstrip('"')


# --- signing -----------------------------------------------------------------------------


def test_authorization_header_is_the_known_answer_for_the_notes_example() -> None:
    request = signed(json_post("https://api.remote.it/graphql/v1"))

    assert request.headers["date"] == FIXED_DATE
    assert request.headers["authorization"] == (
        'Signature keyId="test-key-id",algorithm="hmac-sha256",'
        'headers="(request-target) host date content-type content-length",'
        'signature="PXuz2nZWQEN4++dz/IO8xz28VURXrqbGIVd2CAN4WZo="'
    )


def test_signature_covers_port_query_and_exact_body_length() -> None:
    body = '{"query":"mutation { m0: share }","variables":{"e0":["zoë@example.com"]}}'.encode()
    request = signed(json_post("http://127.0.0.1:8765/graphql/v1?trace=1", body))

    expected = expected_signature(
        SECRET_BYTES,
        [
            "(request-target): post /graphql/v1?trace=1",
            "host: 127.0.0.1:8765",
            f"date: {FIXED_DATE}",
            "content-type: application/json",
            f"content-length: {len(body)}",
        ],
    )
    assert signature_of(request) == expected
    assert request.headers["host"] == "127.0.0.1:8765"
    assert request.headers["content-length"] == str(len(body))
    assert len(body) > len(body.decode())  # the length is counted in bytes, not characters


def test_the_body_is_bound_by_its_length_only() -> None:
    # The recipe signs headers, not a digest of the body: TLS protects the content itself.
    url = "https://api.remote.it/graphql/v1"
    original = signature_of(signed(json_post(url, BODY)))
    same_length = signature_of(signed(json_post(url, BODY.replace(b"{}", b"[]"))))
    longer = signature_of(signed(json_post(url, BODY + b" ")))

    assert same_length == original
    assert longer != original


def test_the_key_id_is_sent_and_the_secret_is_not() -> None:
    request = signed(json_post("https://api.remote.it/graphql/v1"))

    wire = b"\r\n".join(k + b": " + v for k, v in request.headers.raw) + request.content
    assert b'keyId="test-key-id"' in wire
    assert SECRET_BYTES not in wire
    assert SECRET_TEXT.encode() not in wire


def test_a_request_without_body_or_content_type_still_signs_every_header() -> None:
    request = signed(httpx.Request("GET", "https://api.remote.it/graphql/v1"))

    assert request.headers["content-length"] == "0"
    assert request.headers["content-type"] == "application/json"
    expected = expected_signature(
        SECRET_BYTES,
        [
            "(request-target): get /graphql/v1",
            "host: api.remote.it",
            f"date: {FIXED_DATE}",
            "content-type: application/json",
            "content-length: 0",
        ],
    )
    assert signature_of(request) == expected


def test_the_date_comes_from_the_injected_clock() -> None:
    auth = SignatureAuth(CREDENTIALS, now=lambda: 0.0)
    request = next(auth.sync_auth_flow(json_post("https://api.remote.it/graphql/v1")))

    assert request.headers["date"] == "Thu, 01 Jan 1970 00:00:00 GMT"


# --- credentials: the environment --------------------------------------------------------


def test_environment_credentials_are_used_first(tmp_path: Path) -> None:
    write_credentials(tmp_path, "[default]\nR3_ACCESS_KEY_ID = from-file\n")
    environ = {"R3_ACCESS_KEY_ID": "from-env", "R3_SECRET_ACCESS_KEY": SECRET_TEXT}

    credentials = load_credentials(environ=environ, home=tmp_path)

    assert credentials == Credentials("from-env", SECRET_BYTES, "environment")


@pytest.mark.parametrize(
    ("present", "missing"),
    [("R3_ACCESS_KEY_ID", "R3_SECRET_ACCESS_KEY"), ("R3_SECRET_ACCESS_KEY", "R3_ACCESS_KEY_ID")],
)
def test_one_environment_variable_without_the_other_names_the_missing_one(
    tmp_path: Path, present: str, missing: str
) -> None:
    with pytest.raises(CredentialsError) as caught:
        load_credentials(environ={present: SECRET_TEXT}, home=tmp_path)

    assert f"{missing} is not" in str(caught.value)
    assert SECRET_TEXT not in str(caught.value)


def test_environment_secret_that_is_not_base64_is_refused(tmp_path: Path) -> None:
    environ = {"R3_ACCESS_KEY_ID": "id", "R3_SECRET_ACCESS_KEY": "not*base64!"}

    with pytest.raises(CredentialsError, match="R3_SECRET_ACCESS_KEY from environment") as caught:
        load_credentials(environ=environ, home=tmp_path)

    assert "not*base64!" not in str(caught.value)


# --- credentials: the file ---------------------------------------------------------------


def write_credentials(home: Path, text: str, mode: int = 0o600) -> Path:
    path = home / ".remoteit" / "credentials"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


TWO_PROFILES = f"""\
[default]
R3_ACCESS_KEY_ID = default-id
R3_SECRET_ACCESS_KEY = {SECRET_TEXT}
R3_DEVELOPER_API_KEY = not-needed

[Work]
r3_access_key_id = work-id
r3_secret_access_key = {base64.b64encode(b"work").decode()}
"""


def test_file_default_profile(tmp_path: Path) -> None:
    path = write_credentials(tmp_path, TWO_PROFILES)

    credentials = load_credentials(environ={}, home=tmp_path)

    assert credentials == Credentials("default-id", SECRET_BYTES, f"{path} [default]")


@pytest.mark.parametrize(
    ("profile", "environ"),
    [("work", {}), ("WORK", {"R3_PROFILE": "default"}), (None, {"R3_PROFILE": "work"})],
)
def test_file_profile_from_argument_or_environment_ignoring_case(
    tmp_path: Path, profile: str | None, environ: dict[str, str]
) -> None:
    path = write_credentials(tmp_path, TWO_PROFILES)

    credentials = load_credentials(profile, environ=environ, home=tmp_path)

    assert credentials == Credentials("work-id", b"work", f"{path} [Work]")


def test_an_uppercase_default_section_is_an_ordinary_profile(tmp_path: Path) -> None:
    write_credentials(
        tmp_path, f"[DEFAULT]\nR3_ACCESS_KEY_ID = upper\nR3_SECRET_ACCESS_KEY = {SECRET_TEXT}\n"
    )

    assert load_credentials(environ={}, home=tmp_path).key_id == "upper"


def test_no_environment_and_no_file_names_both(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError) as caught:
        load_credentials(environ={}, home=tmp_path)

    message = str(caught.value)
    assert "R3_ACCESS_KEY_ID" in message
    assert str(tmp_path / ".remoteit" / "credentials") in message


def test_missing_profile_lists_the_profiles_that_exist(tmp_path: Path) -> None:
    path = write_credentials(tmp_path, TWO_PROFILES)

    with pytest.raises(CredentialsError) as caught:
        load_credentials("staging", environ={}, home=tmp_path)

    message = str(caught.value)
    assert message == f"{path} has no profile 'staging' (profiles: default, Work)"


@pytest.mark.parametrize("missing", ["R3_ACCESS_KEY_ID", "R3_SECRET_ACCESS_KEY"])
def test_missing_key_names_file_profile_and_key(tmp_path: Path, missing: str) -> None:
    values = {"R3_ACCESS_KEY_ID": "some-id", "R3_SECRET_ACCESS_KEY": SECRET_TEXT}
    del values[missing]
    body = "".join(f"{key} = {value}\n" for key, value in values.items())
    path = write_credentials(tmp_path, f"[default]\n{body}")

    with pytest.raises(CredentialsError) as caught:
        load_credentials(environ={}, home=tmp_path)

    assert str(caught.value) == f"{path} [default] has no {missing}"
    assert SECRET_TEXT not in str(caught.value)


def test_file_secret_that_is_not_base64_is_refused_without_quoting_it(tmp_path: Path) -> None:
    path = write_credentials(
        tmp_path, "[default]\nR3_ACCESS_KEY_ID = id\nR3_SECRET_ACCESS_KEY = s3cr%t-value\n"
    )

    with pytest.raises(CredentialsError) as caught:
        load_credentials(environ={}, home=tmp_path)

    assert str(caught.value) == f"R3_SECRET_ACCESS_KEY from {path} [default] is not valid base64"


@pytest.mark.parametrize(
    "text",
    [
        f"R3_SECRET_ACCESS_KEY = {SECRET_TEXT}\n[default]\n",  # key before any header
        f"[default]\nR3_SECRET_ACCESS_KEY {SECRET_TEXT.rstrip('=')}\n",  # no `=`
    ],
)
def test_unparseable_file_names_the_line_but_never_quotes_it(tmp_path: Path, text: str) -> None:
    path = write_credentials(tmp_path, text)

    with pytest.raises(CredentialsError) as caught:
        load_credentials(environ={}, home=tmp_path)

    message = str(caught.value)
    assert str(path) in message
    assert "line" in message
    assert SECRET_TEXT.rstrip("=") not in message
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_a_file_others_can_read_is_used_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_credentials(tmp_path, TWO_PROFILES, mode=0o644)

    with caplog.at_level(logging.DEBUG):
        credentials = load_credentials(environ={}, home=tmp_path)

    assert credentials.key_id == "default-id"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].name == "batch_share"
    assert str(path) in warnings[0].getMessage()
    assert "chmod 600" in warnings[0].getMessage()
    assert SECRET_TEXT not in caplog.text


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_a_private_file_loads_silently(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_credentials(tmp_path, TWO_PROFILES, mode=0o600)

    with caplog.at_level(logging.DEBUG):
        load_credentials(environ={}, home=tmp_path)

    assert caplog.records == []


# --- the secret stays secret ---------------------------------------------------------------


def test_repr_and_str_never_show_the_secret(tmp_path: Path) -> None:
    write_credentials(tmp_path, TWO_PROFILES)
    credentials = load_credentials(environ={}, home=tmp_path)

    for text in (repr(credentials), str(credentials), f"{credentials!r}", repr([credentials])):
        assert "default-id" in text
        assert SECRET_TEXT not in text
        assert repr(SECRET_BYTES) not in text
        assert "secret" not in text
