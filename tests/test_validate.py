"""Validation of single rows: header aliases, cell parsing, problem codes and messages, and
how email cells explode into report lines."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batch_share.errors import SheetError
from batch_share.models import ACTIONS, Action, Intent, Problem, Sheet, Status
from batch_share.sheet.columns import COLUMNS, map_columns
from batch_share.sheet.emails import split_emails
from batch_share.sheet.ids import looks_mangled, normalize_id
from batch_share.sheet.validate import Validated, validate

DEVICE = "80:00:00:00:01:00:00:01"
OTHER_DEVICE = "80:00:00:00:01:00:00:02"
SERVICE = "80:00:00:00:11:00:00:01"
HEADER = ("device_id", "service_id", "email", "action", "scripting", "notify")


def check(rows: Sequence[Sequence[str]], header: Sequence[str] = HEADER) -> Validated:
    return validate(Sheet.from_rows(header, rows))


def row(
    device: str = DEVICE,
    service: str = "",
    email: str = "ann@example.com",
    action: str = "",
    scripting: str = "",
    notify: str = "",
) -> list[str]:
    return [device, service, email, action, scripting, notify]


def codes(result: Validated) -> list[tuple[int, str, str]]:
    return [(p.row, p.column, p.code) for p in result.problems]


def only_line(result: Validated) -> tuple[Status, str, str] | None:
    assert len(result.lines) == 1
    return result.lines.problems.get(0)


# --- header ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("device_id", "device_id"),
        ("Device", "device_id"),
        ("DeviceID", "device_id"),
        ("Device ID", "device_id"),
        ("device-id", "device_id"),
        ("  Device Address ", "device_id"),
        ("DEVICE_ADDRESS", "device_id"),
        ("Service", "service_id"),
        ("Service ID", "service_id"),
        ("serviceid", "service_id"),
        ("E-mail", "email"),
        ("Emails", "email"),
        ("User", "email"),
        ("User Email", "email"),
        ("users", "email"),
        ("Email Address", "email"),
        ("Operation", "action"),
        ("OP", "action"),
        ("Bulk Scripting", "scripting"),
        ("allow_scripting", "scripting"),
        ("Send E-mail", "notify"),
        ("Notify User", "notify"),
    ],
)
def test_header_aliases_match_ignoring_case_space_and_punctuation(
    name: str, canonical: str
) -> None:
    column_map, _ = map_columns(["ticket", name])
    assert column_map == {canonical: 1}


def test_unknown_headers_are_extra_columns() -> None:
    header = ["Ticket", "Device", "Email", "Requested by", ""]
    result = check([["T-1", DEVICE, "ann@example.com", "bob", "x"]], header)
    assert result.column_map == {"device_id": 1, "email": 2}
    assert result.extra_columns == (0, 3, 4)
    assert result.lines.intent(0).device_id == DEVICE


def test_two_columns_meaning_the_same_thing_are_refused_naming_both() -> None:
    sheet = Sheet.from_rows(
        ["Device", "E-Mail", "Email"], [[DEVICE, "ann@example.com", "bob@example.com"]]
    )
    with pytest.raises(SheetError, match="columns 'E-Mail' and 'Email' both mean email"):
        validate(sheet)


def test_missing_required_columns_are_problems_from_map_columns() -> None:
    column_map, problems = map_columns(["Device", "Notes"])
    assert column_map == {"device_id": 0}
    assert [(p.row, p.column, p.code) for p in problems] == [(0, "email", "missing-column")]


def test_validate_refuses_a_sheet_without_required_columns_naming_them_and_the_header() -> None:
    sheet = Sheet.from_rows(["Name", "Mail box"], [["x", "ann@example.com"]], source="team.csv")
    with pytest.raises(SheetError) as raised:
        validate(sheet)
    message = str(raised.value)
    assert "team.csv" in message
    assert "device_id" in message
    assert "email" in message
    assert "'Name', 'Mail box'" in message


def test_missing_optional_columns_take_their_defaults() -> None:
    result = check([[DEVICE, "ann@example.com"]], ["Device", "Email"])
    assert result.problems == ()
    assert result.lines.intent(0) == Intent(DEVICE, None, "ann@example.com", Action.ADD)
    assert result.lines.intent(0).scripting is False
    assert result.lines.intent(0).notify is True


# --- actions and booleans ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "action"),
    [
        ("", Action.ADD),
        ("ADD", Action.ADD),
        (" share ", Action.ADD),
        ("Grant", Action.ADD),
        ("remove", Action.REMOVE),
        ("UNSHARE", Action.REMOVE),
        ("Revoke", Action.REMOVE),
        ("leave", Action.LEAVE),
    ],
)
def test_action_synonyms(text: str, action: Action) -> None:
    result = check([row(action=text)])
    assert result.problems == ()
    assert result.lines.intent(0).action is action


def test_unknown_action_is_invalid_and_has_no_parsed_action() -> None:
    result = check([row(action="delete")])
    assert codes(result) == [(2, "action", "unknown-action")]
    assert "'delete'" in result.problems[0].message
    assert only_line(result) == (Status.INVALID, "unknown-action", result.problems[0].message)
    assert not result.lines.valid[0]
    assert result.lines.action[0] == -1


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("true", True),
        ("TRUE", True),
        ("Yes", True),
        ("y", True),
        ("1", True),
        ("x", True),
        (" X ", True),
        ("false", False),
        ("No", False),
        ("N", False),
        ("0", False),
    ],
)
def test_boolean_synonyms(text: str, value: bool) -> None:
    result = check([row(scripting=text, notify=text)])
    assert result.problems == ()
    assert result.lines.intent(0).scripting is value
    assert result.lines.intent(0).notify is value


def test_blank_booleans_take_each_columns_default() -> None:
    intent = check([row(scripting=" ", notify="")]).lines.intent(0)
    assert (intent.scripting, intent.notify) == (False, True)


@pytest.mark.parametrize("column", ["scripting", "notify"])
def test_invalid_boolean(column: str) -> None:
    result = check([row(**{column: "maybe"})])
    assert codes(result) == [(2, column, "invalid-boolean")]
    assert f"{column} 'maybe'" in result.problems[0].message
    assert not result.lines.valid[0]


# --- IDs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "80:00:00:00:12:34:56:78",
        "80-00-00-00-12-34-56-78",
        "8000000012345678",
        " 80:00:00:00:12:34:56:78 ",
        "80:00:00:00:12:34:56:78\n",
        "80 00 00 00 12 34 56 78",
    ],
)
def test_normalize_id_accepts_the_usual_forms(text: str) -> None:
    assert normalize_id(text.strip()) == "80:00:00:00:12:34:56:78"


def test_normalize_id_upper_cases() -> None:
    assert normalize_id("80-00-00-00-ab-cd-ef-0a") == "80:00:00:00:AB:CD:EF:0A"


@pytest.mark.parametrize(
    "text",
    ["", "80:00:00:00:12:34:56", "80:00:00:00:12:34:56:78:9A", "80:00:00:00:12:34:56:7G", "0x80"],
)
def test_normalize_id_rejects_anything_but_16_hex_digits(text: str) -> None:
    assert normalize_id(text) is None


HEX_ID = st.lists(st.integers(0, 255), min_size=8, max_size=8).map(
    lambda parts: ":".join(f"{p:02X}" for p in parts)
)


@given(
    canonical=HEX_ID,
    separators=st.lists(st.sampled_from(["", ":", "-", " "]), min_size=7, max_size=7),
    lower=st.lists(st.booleans(), min_size=16, max_size=16),
    padding=st.sampled_from(["", " ", "\t", "  "]),
)
def test_any_separator_and_case_variant_normalises_back(
    canonical: str, separators: list[str], lower: list[bool], padding: str
) -> None:
    digits = canonical.replace(":", "")
    cased = "".join(d.lower() if low else d for d, low in zip(digits, lower, strict=True))
    pairs = [cased[i : i + 2] for i in range(0, 16, 2)]
    variant = pairs[0] + "".join(
        sep + pair for sep, pair in zip(separators, pairs[1:], strict=True)
    )
    assert normalize_id(padding + variant + padding) == canonical


@given(st.text(alphabet="0123456789abcdefABCDEF:- ", max_size=30))
def test_normalize_id_returns_a_canonical_id_or_none(text: str) -> None:
    result = normalize_id(text)
    hex_digits = re.sub(r"[^0-9a-fA-F]", "", text)
    if len(hex_digits) == 16:
        assert result == ":".join(hex_digits.upper()[i : i + 2] for i in range(0, 16, 2))
    else:
        assert result is None


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("8.00000000012346E+15", "scientific notation"),
        ("8.00000000012346e+15", "scientific notation"),
        ("1,23E+15", "scientific notation"),
        ("8E+15", "scientific notation"),
        ("8000000012345678.0", "decimal"),
        ("8,000,000,012,345,678", "decimal"),
        ("12:34:56", "time"),
        ("1:05 PM", "time"),
        ("2024-01-05", "date"),
        ("2024-01-05 00:00:00", "date"),
        ("05/01/2024", "date"),
        ("31.12.24", "date"),
        ("5-Jan-24", "date"),
    ],
)
def test_looks_mangled_recognises_what_spreadsheets_do_to_ids(text: str, kind: str) -> None:
    reason = looks_mangled(text)
    assert reason is not None
    assert kind in reason


@pytest.mark.parametrize(
    "text",
    [
        "80:00:00:00:12:34:56:78",
        "8000000012345678",
        "8000000012345E10",  # 16 hex digits: an ID, however number-like
        "80:00:00",  # 80 hours is no time of day
        "12-34-56",  # no month 34
        "hello",
        "",
    ],
)
def test_looks_mangled_leaves_ids_and_plain_junk_alone(text: str) -> None:
    assert looks_mangled(text) is None


def test_blank_device_id() -> None:
    result = check([row(device="  ")])
    assert codes(result) == [(2, "device_id", "missing-device-id")]
    assert result.lines.device[0] == -1


@pytest.mark.parametrize(
    "text", ["80:00:00:00:12:34:56", "abc", "80:00:00:00:12:34:56:7G", "80-00-00-00-12-zz-56-78"]
)
def test_invalid_device_id(text: str) -> None:
    result = check([row(device=text)])
    assert codes(result) == [(2, "device_id", "invalid-device-id")]
    assert f"'{text}'" in result.problems[0].message
    assert result.lines.device[0] == -1


@pytest.mark.parametrize(
    "text", ["8.00000000012346E+15", "12:34:56", "2024-01-05", "8000000012345678.0"]
)
def test_mangled_device_id_is_reported_with_a_hint_and_never_guessed(text: str) -> None:
    result = check([row(device=text)])
    assert codes(result) == [(2, "device_id", "id-mangled")]
    message = result.problems[0].message
    assert f"device_id '{text}'" in message
    assert "format the column as Text" in message
    assert result.lines.device_ids == ()


def test_a_cell_the_spreadsheet_stored_as_a_number_is_mangled_even_if_it_reads_as_hex() -> None:
    sheet = Sheet.from_rows(
        ["device", "email"],
        [["8000000012345678", "ann@example.com"], [DEVICE, "bob@example.com"]],
    )
    typed_column = dataclasses.replace(sheet.columns[0], typed=(True, False))
    sheet = dataclasses.replace(sheet, columns=(typed_column, sheet.columns[1]))
    result = validate(sheet)
    assert codes(result) == [(2, "device_id", "id-mangled")]
    assert "number or date" in result.problems[0].message
    assert list(result.lines.valid) == [False, True]


def test_id_forms_share_one_normalised_table_entry() -> None:
    result = check(
        [
            row(device="80-00-00-00-01-00-00-01"),
            row(device=DEVICE.lower()),
            row(device=DEVICE),
            row(device=OTHER_DEVICE),
        ]
    )
    assert result.lines.device_ids == (DEVICE, OTHER_DEVICE)
    assert list(result.lines.device) == [0, 0, 0, 1]


def test_service_id_blank_means_whole_device_and_forms_are_normalised() -> None:
    result = check([row(service=""), row(service=SERVICE.replace(":", "-").lower())])
    assert result.problems == ()
    assert result.lines.intent(0).service_id is None
    assert result.lines.intent(1).service_id == SERVICE


@pytest.mark.parametrize(
    ("text", "code"),
    [("abcd", "invalid-service-id"), ("80:00:00", "invalid-service-id"), ("1.5E+15", "id-mangled")],
)
def test_bad_service_id(text: str, code: str) -> None:
    result = check([row(service=text)])
    assert codes(result) == [(2, "service_id", code)]
    assert result.lines.service[0] == -1
    assert not result.lines.valid[0]


def test_leave_with_a_service_is_a_problem_and_leave_of_a_device_is_fine() -> None:
    result = check([row(action="LEAVE", service=SERVICE), row(action="leave")])
    assert codes(result) == [(2, "action", "leave-with-service")]
    assert SERVICE in result.problems[0].message
    assert list(result.lines.valid) == [False, True]


# --- emails -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "addresses"),
    [
        ("ann@example.com", ["ann@example.com"]),
        (" ann@example.com ", ["ann@example.com"]),
        ("a@x.com, b@x.com", ["a@x.com", "b@x.com"]),
        ("a@x.com;b@x.com", ["a@x.com", "b@x.com"]),
        ("a@x.com\nb@x.com\r\n c@x.com", ["a@x.com", "b@x.com", "c@x.com"]),
        ("a@x.com ,; \t b@x.com,,", ["a@x.com", "b@x.com"]),
        ("", []),
        (" ;, ", []),
    ],
)
def test_split_emails(cell: str, addresses: list[str]) -> None:
    assert split_emails(cell) == addresses


ADDRESS = st.from_regex(r"[A-Za-z0-9._+-]{1,10}@[a-z0-9-]{1,8}\.[a-z]{2,4}", fullmatch=True)
SEPARATOR = st.text(alphabet=",; \t\r\n", min_size=1, max_size=4)


@given(
    addresses=st.lists(ADDRESS, max_size=6),
    separators=st.lists(SEPARATOR, min_size=7, max_size=7),
    lead=st.text(alphabet=",; \n", max_size=3),
)
def test_split_emails_recovers_addresses_whatever_separates_them(
    addresses: list[str], separators: list[str], lead: str
) -> None:
    cell = lead + "".join(a + s for a, s in zip(addresses, separators, strict=False))
    assert split_emails(cell) == addresses


def test_blank_email_cell_is_one_line_with_an_empty_email() -> None:
    result = check([row(email=" \n ")])
    assert codes(result) == [(2, "email", "missing-email")]
    assert result.lines.emails[result.lines.email[0]] == ""
    assert not result.lines.valid[0]


@pytest.mark.parametrize(
    "address",
    [
        "ann",
        "ann@",
        "@example.com",
        "ann@@example.com",
        "ann@example",
        "ann@example.",
        "ann@.example.com",
        "ann@exa_mple.com",
        "<ann@example.com>",
        ".ann@example.com",
        "ann..b@example.com",
        "ann@example.c",
        "ann@-example.com",
        "a" * 65 + "@example.com",
        "ann@" + "a" * 250 + ".com",
    ],
)
def test_invalid_email(address: str) -> None:
    result = check([row(email=address)])
    assert codes(result) == [(2, "email", "invalid-email")]
    assert result.problems[0].message.startswith(f"email '{address[:20]}")
    assert not result.lines.valid[0]


@pytest.mark.parametrize(
    "address",
    ["ann@example.com", "Ann.Lee+ops@mail.example.co.uk", "o'neil@example.ie", "zoë@exämple.de"],
)
def test_valid_email(address: str) -> None:
    result = check([row(email=address)])
    assert result.problems == ()
    assert result.lines.emails == (address,)


def test_email_cells_explode_into_lines_in_sheet_order() -> None:
    result = check(
        [
            row(email="Ann@Example.com, bob@example.com\ncat@example.com"),
            row(device=OTHER_DEVICE, email="dan@example.com"),
            row(email="bob@example.com; ann@example.com"),
        ]
    )
    lines = result.lines
    assert result.problems == ()
    assert list(lines.row) == [0, 0, 0, 1, 2, 2]
    emails = [lines.emails[e] for e in lines.email]
    assert emails == [
        "Ann@Example.com",
        "bob@example.com",
        "cat@example.com",
        "dan@example.com",
        "bob@example.com",
        "ann@example.com",
    ]
    keys = [lines.email_keys[e] for e in lines.email]
    assert keys[0] == keys[5] == "ann@example.com"
    assert [lines.device_ids[d] for d in lines.device] == [DEVICE] * 3 + [OTHER_DEVICE] + [
        DEVICE
    ] * 2
    assert lines.valid.all()
    assert lines.problems == {}


def test_an_invalid_address_spoils_only_its_own_line() -> None:
    result = check([row(email="ann@example.com, bob@, cat@example.com")])
    assert codes(result) == [(2, "email", "invalid-email")]
    assert list(result.lines.valid) == [True, False, True]
    assert set(result.lines.problems) == {1}


def test_a_row_level_problem_spoils_every_line_of_the_row() -> None:
    result = check([row(action="nope", email="ann@example.com bob@example.com")])
    assert list(result.lines.valid) == [False, False]
    assert {code for _, code, _ in result.lines.problems.values()} == {"unknown-action"}


# --- several problems -----------------------------------------------------------------------


def test_a_row_with_several_problems_reports_the_first_by_column_order_and_all_messages() -> None:
    result = check(
        [
            row(
                device="8.00000000012346E+15",
                service="abcd",
                email="ok@example.com, bad@",
                action="delete",
                scripting="maybe",
                notify="perhaps",
            )
        ]
    )
    assert codes(result) == [
        (2, "device_id", "id-mangled"),
        (2, "service_id", "invalid-service-id"),
        (2, "email", "invalid-email"),
        (2, "action", "unknown-action"),
        (2, "scripting", "invalid-boolean"),
        (2, "notify", "invalid-boolean"),
    ]
    messages = [p.message for p in result.problems]
    good_line, bad_line = result.lines.problems[0], result.lines.problems[1]
    assert bad_line == (Status.INVALID, "id-mangled", "; ".join(messages))
    without_email = [m for m in messages if "bad@" not in m]
    assert good_line == (Status.INVALID, "id-mangled", "; ".join(without_email))


def test_email_problem_comes_before_later_columns_in_the_code() -> None:
    verdict = only_line(check([row(email="bad@", scripting="maybe")]))
    assert verdict is not None
    assert verdict[1] == "invalid-email"


def test_problems_are_sorted_by_row_and_carry_the_spreadsheet_row_number() -> None:
    sheet = Sheet.from_rows(
        HEADER,
        [row(), row(device="", notify="?"), row(), row(device="ff", email="")],
        first_row=5,
    )
    result = validate(sheet)
    assert codes(result) == [
        (6, "device_id", "missing-device-id"),
        (6, "notify", "invalid-boolean"),
        (8, "device_id", "invalid-device-id"),
        (8, "email", "missing-email"),
    ]
    assert list(result.lines.valid) == [True, False, True, False]


def test_rows_with_the_same_bad_cells_each_get_their_own_problems_and_lines() -> None:
    result = check(
        [
            row(device="1.5E+15", email="a@example.com"),
            row(device="1.5E+15", email="a@example.com b@example.com"),
            row(device="1.5E+15", email="bad@ c@example.com"),
            row(device="1.5E+15", email="a@example.com"),
        ]
    )
    assert [(p.row, p.code) for p in result.problems] == [
        (2, "id-mangled"),
        (3, "id-mangled"),
        (4, "id-mangled"),
        (4, "invalid-email"),
        (5, "id-mangled"),
    ]
    assert list(result.lines.row) == [0, 1, 1, 2, 2, 3]
    assert not result.lines.valid.any()
    assert sorted(result.lines.problems) == list(range(6))
    assert "bad@" in result.lines.problems[3][2]
    assert "bad@" not in result.lines.problems[4][2]


def test_every_problem_code_has_a_row_and_a_canonical_column() -> None:
    result = check(
        [
            row(device=""),
            row(device="abc"),
            row(device="8.00000000012346E+15"),
            row(service="abc"),
            row(email=""),
            row(email="ann@"),
            row(action="drop"),
            row(scripting="maybe"),
            row(action="leave", service=SERVICE),
            row(),
        ]
    )
    assert [p.code for p in result.problems] == [
        "missing-device-id",
        "invalid-device-id",
        "id-mangled",
        "invalid-service-id",
        "missing-email",
        "invalid-email",
        "unknown-action",
        "invalid-boolean",
        "leave-with-service",
    ]
    assert all(p.column in COLUMNS for p in result.problems)
    assert [p.row for p in result.problems] == list(range(2, 11))
    assert list(result.lines.valid) == [False] * 9 + [True]


def test_valid_lines_read_back_as_intents() -> None:
    result = check(
        [row(service=SERVICE, email="ann@example.com", action="revoke", scripting="y", notify="n")]
    )
    # Scripting is granted only by ADD: a removal applies (and reports) false.
    assert result.lines.intent(0) == Intent(
        DEVICE, SERVICE, "ann@example.com", Action.REMOVE, scripting=False, notify=False
    )
    assert ACTIONS[int(result.lines.action[0])] is Action.REMOVE
    added = check([row(email="ann@example.com", action="add", scripting="y")])
    assert added.lines.intent(0).scripting is True


def test_an_empty_sheet_has_no_lines_and_no_problems() -> None:
    result = check([])
    assert len(result.lines) == 0
    assert result.problems == ()


# --- a property over whole sheets -----------------------------------------------------------

CELLS = {
    "device": st.sampled_from([DEVICE, OTHER_DEVICE.lower(), "", "zz", "8E+15", "12:30"]),
    "service": st.sampled_from(["", SERVICE, "nope"]),
    "email": st.sampled_from(
        ["a@example.com", "", "a@example.com, b@example.com", "bad@", "c@example.com\nbad@"]
    ),
    "action": st.sampled_from(["", "remove", "LEAVE", "??"]),
    "flag": st.sampled_from(["", "y", "0", "maybe"]),
}
ROW = st.builds(
    row,
    device=CELLS["device"],
    service=CELLS["service"],
    email=CELLS["email"],
    action=CELLS["action"],
    scripting=CELLS["flag"],
    notify=CELLS["flag"],
)


@given(st.lists(ROW, max_size=25))
def test_lines_and_problems_agree_for_any_sheet(rows: list[list[str]]) -> None:
    result = check(rows)
    lines = result.lines
    expected = [
        (index, address)
        for index, cells in enumerate(rows)
        for address in (split_emails(cells[2]) or [""])
    ]
    assert [(int(r), lines.emails[e]) for r, e in zip(lines.row, lines.email, strict=True)] == (
        expected
    )
    for line in range(len(lines)):
        row_number = int(lines.row[line]) + 2
        address = lines.emails[int(lines.email[line])]
        own = [
            p
            for p in result.problems
            if p.row == row_number and (p.column != "email" or f"'{address}'" in p.message)
        ]
        if address == "":
            own = [p for p in result.problems if p.row == row_number]
        verdict = (Status.INVALID, own[0].code, "; ".join(p.message for p in own)) if own else None
        found = lines.problems.get(line)
        if verdict is None and found is not None:
            # A row that names its device or service is no problem; it waits for the account.
            assert found[:2] == (Status.NOT_RUN, "name-not-resolved")
            found = None
        assert found == verdict
        assert bool(lines.valid[line]) == (lines.problems.get(line) is None)
    invalid = {i for i, p in lines.problems.items() if p[0] is Status.INVALID}
    assert {p.row for p in result.problems} == {int(lines.row[i]) + 2 for i in invalid}
    order = [(p.row, COLUMNS.index(p.column)) for p in result.problems]
    assert order == sorted(order)


def test_problem_is_the_shared_model_type() -> None:
    result = check([row(device="")])
    assert isinstance(result.problems[0], Problem)


# --- names --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Lobby Camera",
        "ssh",
        "not-an-id",
        "zz",
        "Gateway 7",
        "Cabinet B2 Feed 01",
        "Backfeed cam 2A",
    ],
)
def test_a_cell_that_is_no_id_attempt_is_a_name_waiting_for_the_account(text: str) -> None:
    result = check([row(device=text)])
    assert codes(result) == []
    assert result.lines.device[0] == -1
    assert not result.lines.valid[0]
    status, code, message = result.lines.problems[0]
    assert (status, code) == (Status.NOT_RUN, "name-not-resolved")
    assert f"device '{text}'" in message
    assert result.lines.device_name is not None
    assert result.lines.names[int(result.lines.device_name[0])] == text


def test_a_service_name_on_a_device_id_waits_too() -> None:
    result = check([row(service="  SSH "), row()])
    assert result.lines.problems[0][1] == "name-not-resolved"
    assert result.lines.service_name is not None
    assert result.lines.names[int(result.lines.service_name[0])] == "SSH"
    assert result.lines.valid.tolist() == [False, True]


def test_name_columns_stand_in_for_ids_and_must_agree_with_names_in_the_id_column() -> None:
    header = ("device_name", "device_id", "service_name", "email")
    result = check(
        [
            ["Lobby Camera", "", "", "ann@example.com"],
            ["Lobby Camera", DEVICE, "ssh", "bob@example.com"],
            ["Lobby Camera", "lobby camera", "", "cat@example.com"],
            ["Lobby Camera", "Front Desk PC", "", "dan@example.com"],
            ["", "", "", "eve@example.com"],
        ],
        header=header,
    )
    assert codes(result) == [
        (5, "device_id", "name-mismatch"),
        (6, "device_id", "missing-device-id"),
    ]
    assert [result.lines.problems.get(i, (None, ""))[1] for i in range(5)] == [
        "name-not-resolved",
        "name-not-resolved",  # the device is known, its service is named
        "name-not-resolved",
        "name-mismatch",
        "missing-device-id",
    ]
    assert result.lines.device[1] >= 0
    assert "Front Desk PC" in result.problems[0].message


def test_only_a_name_column_is_enough_for_a_roster() -> None:
    result = check([["Lobby Camera", "ann@example.com"]], header=("Device Name", "Email"))
    assert result.lines.problems[0][1] == "name-not-resolved"
    assert result.column_map["device_name"] == 0


def test_a_name_column_drops_the_formula_guard_an_export_put_before_it() -> None:
    result = check([["'-cam", "ann@example.com"]], header=("device_name", "email"))
    assert result.lines.device_name is not None
    assert result.lines.names[int(result.lines.device_name[0])] == "-cam"
