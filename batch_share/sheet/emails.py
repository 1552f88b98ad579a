"""Email cells: splitting a cell into addresses, checking each, and doing both for a
million cells fast (an RE2 pass in arrow recognises the everyday cell)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from batch_share.models import (
    BoolArray,
    Column,
    IntArray,
)
from batch_share.sheet.arrowtext import (
    arrow_if_worth_it,
    fullmatch,
    to_arrow,
    to_bools,
    to_ints,
)
from batch_share.sheet.verdicts import Issue, quote

if TYPE_CHECKING:
    import pyarrow as pa

_EMAIL_SEPARATORS = re.compile(r"[,;\s\u200b\ufeff]+")


def split_emails(cell: str) -> list[str]:
    """The addresses in one email cell, in order: separated by `,` `;` whitespace or
    newlines (zero-width spaces too, which pasting from web pages leaves behind)."""
    return [part for part in _EMAIL_SEPARATORS.split(cell) if part]


_EMAIL_FORBIDDEN = frozenset('()<>[]\\",;:')


# The everyday address, matched in one C-level call: a strict subset of what `_email_fault`
# accepts, so it only skips the slow, message-producing checks for addresses that pass them.
# A sheet of a million distinct addresses spends most of validation here.
PLAIN_EMAIL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z][A-Za-z0-9-]*[A-Za-z0-9]"
)


def _email_fault(address: str) -> str | None:
    """What makes `address` unusable, in words, or None. Deliberately a sanity check, not
    RFC 5322: the server has the last word on whether an account exists."""
    if len(address) <= 254 and PLAIN_EMAIL.fullmatch(address) and address.index("@") <= 64:
        return None
    if len(address) > 254:
        return "it is longer than 254 characters"
    if address.count("@") != 1:
        return "it has no @" if "@" not in address else "it has more than one @"
    bad = next((ch for ch in address if ch in _EMAIL_FORBIDDEN or not ch.isprintable()), None)
    if bad is not None:
        return f"it contains {bad!r}"
    local, domain = address.split("@")
    if not local:
        return "there is nothing before the @"
    if len(local) > 64:
        return "the part before the @ is longer than 64 characters"
    if local.startswith(".") or local.endswith(".") or ".." in local:
        return "the part before the @ has a misplaced dot"
    if not domain:
        return "there is nothing after the @"
    labels = domain.split(".")
    if len(labels) < 2:
        return f"the domain '{domain}' has no dot"
    if not all(labels):
        return f"the domain '{domain}' has an empty part"
    if any(not all(ch.isalnum() or ch == "-" for ch in label) for label in labels):
        return f"the domain '{domain}' has characters a domain cannot have"
    if any(label.startswith("-") or label.endswith("-") for label in labels):
        return f"the domain '{domain}' has a part starting or ending with '-'"
    if len(labels[-1]) < 2 or labels[-1].isdigit():
        return f"the domain '{domain}' does not end in a top-level domain"
    return None


@dataclass(frozen=True, slots=True)
class EmailCells:
    """Each distinct email cell split into addresses, flattened.

    Cell k's addresses are `addresses[starts[k] : starts[k] + counts[k]]` (indices into
    `emails`, which lists each address once, in order of first appearance). A blank cell
    holds one address, "", so it still gets a report line.
    """

    counts: IntArray
    starts: IntArray
    addresses: IntArray
    emails: tuple[str, ...]
    keys: tuple[str, ...]  # per entry of `emails`: its case-folded comparison key
    issues: tuple[Issue | None, ...]  # per entry of `emails`
    bad: BoolArray  # per entry of `emails`
    cell_bad: BoolArray  # per distinct cell: any of its addresses is bad


def check_emails(column: Column) -> EmailCells:
    """Split and check every distinct email cell; the same result as
    `check_emails_in_python`, which is the definition.

    Fast path: a cell that `PLAIN_EMAIL` matches whole (RE2, in arrow) and that is within
    the length limits is one address, itself, with no problem: `split_emails` finds no
    separator in it and `_email_fault` accepts it on its first line. Distinct cells are
    distinct texts, so such cells need no deduplicating among themselves; only the other
    cells are split and checked in Python.
    """
    texts = arrow_if_worth_it(column.values)
    if texts is None:
        return check_emails_in_python(column)
    plain = _plain_address_cells(texts)
    folds = _needs_folding(texts)
    if plain.all():
        return _plain_cells(column.values, folds)
    return _mixed_cells(column.values, texts, plain, folds)


def _plain_address_cells(texts: pa.LargeStringArray) -> BoolArray:
    """Cells `_email_fault` accepts on its first line: `PLAIN_EMAIL` matches the whole
    cell, it is at most 254 characters, and its @ (there is one) is at most 64 in. Such a
    match is ASCII, so byte counts are character counts."""
    import pyarrow.compute as pc  # noqa: PLC0415 - big columns only (see arrow_if_worth_it)

    plain = fullmatch(texts, PLAIN_EMAIL)
    plain &= to_ints(pc.binary_length(texts)) <= 254
    plain &= to_ints(pc.find_substring(texts, "@")) <= 64
    return plain


def _needs_folding(texts: pa.LargeStringArray) -> BoolArray:
    """Texts whose `casefold()` may differ from them: any that is not ASCII, and any ASCII
    one with a capital (for ASCII, case-folding is lower-casing A-Z). The rest are their
    own comparison keys, which spares a second copy of a million addresses."""
    import pyarrow.compute as pc  # noqa: PLC0415

    ascii_text = to_bools(pc.string_is_ascii(texts))
    lowered = to_bools(pc.equal(texts, pc.ascii_lower(texts)))
    return ~(ascii_text & lowered)


def _fold(texts: Sequence[str], folds: BoolArray) -> tuple[str, ...]:
    """`casefold()` of each text, computed only where `folds` says it may change it."""
    if not folds.any():
        return tuple(texts)
    keys = list(texts)
    for index in np.flatnonzero(folds).tolist():
        keys[index] = keys[index].casefold()
    return tuple(keys)


def _plain_cells(values: tuple[str, ...], folds: BoolArray) -> EmailCells:
    """Every cell is one good address: cell k is address k."""
    count = len(values)
    each = np.arange(count, dtype=np.int64)
    none = np.zeros(count, dtype=np.bool_)
    keys = values if not folds.any() else _fold(values, folds)
    return EmailCells(
        np.ones(count, dtype=np.int64), each, each, values, keys, (None,) * count, none, none
    )


def _mixed_cells(
    values: tuple[str, ...], texts: pa.LargeStringArray, plain: BoolArray, folds: BoolArray
) -> EmailCells:
    """Plain cells as in `_plain_cells`; the others split and checked in Python.

    Split addresses may repeat each other or a plain cell, so every address gets an
    identity: the index of the plain cell with its text, or, past all cells, one per new
    address. Keeping each identity's first appearance gives the table in the order
    `check_emails_in_python` builds it.
    """
    count = len(values)
    others = np.flatnonzero(~plain)
    split = [split_emails(values[cell]) or [""] for cell in others.tolist()]
    counts = np.ones(count, dtype=np.int64)
    counts[others] = [len(addresses) for addresses in split]
    starts = np.cumsum(counts) - counts
    found = [address for addresses in split for address in addresses]
    identity, new_addresses = _address_identities(values, texts, plain, found)

    flat = np.empty(int(counts.sum()), dtype=np.int64)  # the identity of every address
    flat[starts[plain]] = np.flatnonzero(plain)
    flat[_slots(starts[others], counts[others])] = [identity[address] for address in found]
    in_order, entry = _first_appearances(flat, count + len(new_addresses))

    pool = np.empty(count + len(new_addresses), dtype=object)  # the text of each identity
    pool[:count] = values
    pool[count:] = new_addresses
    emails = tuple(pool[in_order].tolist())
    is_new = in_order >= count
    keys = _fold(emails, np.append(folds, np.ones(len(new_addresses), dtype=np.bool_))[in_order])
    issue_of = {address: email_issue(address) for address in new_addresses}
    issues = tuple(
        issue_of[email] if new else None for email, new in zip(emails, is_new.tolist(), strict=True)
    )
    bad = np.fromiter((i is not None for i in issues), dtype=np.bool_, count=len(issues))
    addresses = entry[flat]
    cell_bad = np.logical_or.reduceat(bad[addresses], starts)
    return EmailCells(counts, starts, addresses, emails, keys, issues, bad, cell_bad)


def _address_identities(
    values: tuple[str, ...], texts: pa.LargeStringArray, plain: BoolArray, found: list[str]
) -> tuple[dict[str, int], list[str]]:
    """The identity of each address found by splitting (see `_mixed_cells`), and the found
    addresses that no plain cell holds, in order of first appearance."""
    distinct = list(dict.fromkeys(found))
    wanted = to_arrow(distinct)
    if wanted is None:  # cannot happen: pieces of texts that converted convert too
        raise ValueError("split email addresses are not valid text")
    import pyarrow.compute as pc  # noqa: PLC0415

    # An arrow set lookup of the few found addresses over all cells, rather than a dict
    # of a million cells.
    repeated = np.flatnonzero(plain & to_bools(pc.is_in(texts, value_set=wanted)))
    identity = {values[cell]: cell for cell in repeated.tolist()}
    new_addresses = [address for address in distinct if address not in identity]
    identity.update((address, len(values) + i) for i, address in enumerate(new_addresses))
    return identity, new_addresses


def _slots(starts: IntArray, counts: IntArray) -> IntArray:
    """Every position starts[i], starts[i] + 1, ..., starts[i] + counts[i] - 1, in order."""
    run_starts = np.cumsum(counts) - counts
    within = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(run_starts, counts)
    slots: IntArray = np.repeat(starts, counts) + within
    return slots


def _first_appearances(flat: IntArray, size: int) -> tuple[IntArray, IntArray]:
    """The distinct values of `flat` (all below `size`) in order of first appearance, and
    each value's place in that order (for values that appear)."""
    first = np.full(size, len(flat), dtype=np.int64)
    np.minimum.at(first, flat, np.arange(len(flat), dtype=np.int64))
    is_first = np.zeros(len(flat), dtype=np.bool_)
    is_first[first[first < len(flat)]] = True
    in_order = flat[is_first]
    place = np.zeros(size, dtype=np.int64)
    place[in_order] = np.arange(len(in_order), dtype=np.int64)
    return in_order, place


def check_emails_in_python(column: Column) -> EmailCells:
    """Split and check every cell in Python: the definition the fast path must agree with,
    and the path for texts arrow cannot take."""
    table: dict[str, int] = {}
    counts: list[int] = []
    flat: list[int] = []
    for text in column.values:
        in_cell = split_emails(text) or [""]
        counts.append(len(in_cell))
        if len(in_cell) == 1:
            flat.append(table.setdefault(in_cell[0], len(table)))
        else:
            flat.extend(table.setdefault(address, len(table)) for address in in_cell)
    emails = tuple(table)
    issues = tuple(email_issue(address) for address in emails)
    bad = np.fromiter((i is not None for i in issues), dtype=np.bool_, count=len(issues))
    count_array = np.asarray(counts, dtype=np.int64)
    starts = np.cumsum(count_array) - count_array
    addresses = np.asarray(flat, dtype=np.int64)
    cell_bad = np.logical_or.reduceat(bad[addresses], starts) if len(starts) else bad[:0]
    keys = tuple(email.casefold() for email in emails)
    return EmailCells(count_array, starts, addresses, emails, keys, issues, bad, cell_bad)


def email_issue(address: str) -> Issue | None:
    if not address:
        return ("missing-email", "email is blank")
    fault = _email_fault(address)
    if fault is None:
        return None
    return ("invalid-email", f"email {quote(address)} is not a valid address: {fault}")
