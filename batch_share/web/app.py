"""The page's routes: upload -> plan -> (confirm) -> job -> result, over the library.

A `sync` cannot be confirmed from the sheet alone: what it adds and removes depends on the
account. So Apply in sync mode first runs the sync's dry run, and that dry run's result page
states the difference's numbers and asks for the confirmation.

Nothing here decides anything about a sheet: planning is `plan_sheet`, the brake is
`check_guard`, sending and the report are the job (`web/jobs.py`). This module turns their
values into pages and back, and keeps the few things a page needs between requests (the
uploaded files and the jobs) in memory for the server's life.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
from starlette.applications import Starlette
from starlette.datastructures import FormData, UploadFile
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from batch_share.errors import BatchShareError, exit_code_for
from batch_share.models import ACTIONS, PER_REQUEST_DEFAULT, Action, Problem, ProgressEvent, Status
from batch_share.pipeline import (
    Guard,
    PlannedSheet,
    guard_verdict,
    mutation_preview,
    plan_sheet,
    status_counts,
)
from batch_share.plan.planned import waiting_for_names
from batch_share.report.writer import REPORT_COLUMNS
from batch_share.web import jobs
from batch_share.web.security import Guardrail

logger = logging.getLogger("batch_share.web")

HERE = Path(__file__).parent
TABLE_LIMIT = 10_000  # rows drawn in a table; the report holds them all
DEVICES_SHOWN = 500
WORKBOOK_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".ods")
STATUSES = tuple(status.value for status in Status)
RETRY_STATUSES = frozenset({Status.FAILED.value, Status.NOT_RUN.value})
PROBLEM_STATUSES = frozenset({Status.INVALID.value, Status.CONFLICT.value})
# A difference line's first character, as `sync --dry-run` prints it, to the class that
# colours it (the character stays beside the colour).
DIFF_KINDS = {"+": "add", "-": "remove", "=": "unchanged", "!": "held"}
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._ ()-]")


@dataclass(frozen=True, slots=True)
class EmulatorInfo:
    """The in-process emulator `serve --emulator` started: where it is and its key."""

    url: str
    credentials: Any  # batch_share.send.auth.Credentials; kept loose so httpx stays lazy
    devices: int


@dataclass(frozen=True, slots=True)
class ServeConfig:
    """The server's settings; the per-run ones are only defaults the page can change."""

    port: int
    work_dir: Path
    token: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    api_url: str = jobs.DEFAULT_API_URL
    profile: str | None = None
    concurrency: int = 8
    rate: float = 10.0
    retries: int = 6
    timeout: float = 30.0
    per_request: int = PER_REQUEST_DEFAULT
    scope: str = "sheet"
    guard: Guard = field(default_factory=Guard)
    state_dir: Path | None = None
    max_upload_bytes: int = 50 * 1024 * 1024
    emulator: EmulatorInfo | None = None


@dataclass(frozen=True, slots=True)
class Settings:
    """What the page may change per run."""

    mode: str
    api_url: str
    profile: str
    rate: float
    concurrency: int
    scope: str
    allow_mass_removal: bool

    def fields(self) -> dict[str, str]:
        """As hidden form fields, to carry them through the confirmation page."""
        return {
            "mode": self.mode,
            "api_url": self.api_url,
            "profile": self.profile,
            "rate": f"{self.rate:g}",
            "concurrency": str(self.concurrency),
            "scope": self.scope,
            "allow_mass_removal": "yes" if self.allow_mass_removal else "",
        }


class PageError(Exception):
    """A request the page cannot honour; shown to the user with a status code."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Upload:
    id: str
    path: Path
    name: str
    sheet_names: tuple[str, ...] = ()
    only: frozenset[str] | None = None
    plans: dict[str | None, PlannedSheet] = field(default_factory=dict)


@dataclass
class Job:
    """One dry run or apply in a worker thread; its events are kept for the SSE stream."""

    id: str
    upload: Upload
    sheet_name: str | None
    options: jobs.JobOptions
    settings: Settings
    events: list[dict[str, Any]] = field(default_factory=list)
    done: bool = False
    result: jobs.JobResult | None = None
    error: str | None = None
    exit_code: int | None = None
    guard: dict[str, Any] | None = None
    diff: tuple[jobs.DeviceDiff, ...] | None = None  # a sync's difference, once known
    confirming: bool = False  # a sync dry run started by Apply: its result asks to confirm
    started: float = field(default_factory=time.time)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, event: jobs.JobEvent) -> None:
        if isinstance(event, jobs.DiffEvent):
            with self.lock:
                self.diff = event.devices
        self._append(_event_payload(event))

    def _append(self, payload: dict[str, Any]) -> None:
        with self.lock:
            if payload["type"] == "guard":
                self.guard = payload
            self.events.append(payload)

    def since(self, index: int) -> tuple[list[dict[str, Any]], bool]:
        with self.lock:
            return self.events[index:], self.done

    def run(self) -> None:
        try:
            self.result = jobs.run_job(self.upload.path, self.options, on_event=self.record)
            self.exit_code = int(self.result.exit_code)
            if self.result.errors:
                self.error = "; ".join(self.result.errors)
        except BatchShareError as error:
            self.error = str(error)
            self.exit_code = int(exit_code_for(error))
        except Exception as error:
            logger.exception("the job failed")
            self.error = f"internal error ({type(error).__name__}); see the server's log"
            self.exit_code = 1
        counts = self.result.counts if self.result is not None else {}
        self._append(
            {"type": "done", "exit_code": self.exit_code, "counts": counts, "error": self.error}
        )
        with self.lock:
            self.done = True

    @property
    def dry_run(self) -> bool:
        return self.options.dry_run

    @property
    def command(self) -> str:
        return self.options.command


def _event_payload(event: jobs.JobEvent) -> dict[str, Any]:
    if isinstance(event, ProgressEvent):
        return {
            "type": "progress",
            "done": event.mutations_done,
            "total": event.mutations_total,
            "succeeded": event.keys_succeeded,
            "failed": event.keys_failed,
            "retries": event.retries,
            "rate": round(event.rate, 2),
        }
    if isinstance(event, jobs.GuardEvent):
        return {
            "type": "guard",
            "message": event.message,
            "preview": list(event.preview),
            "warning": event.only_a_warning,
        }
    if isinstance(event, jobs.PlannedEvent):
        return {"type": "planned", **{k: event.summary[k] for k in ("lines", "mutations")}}
    shown = event.devices[:DEVICES_SHOWN]
    return {
        "type": "diff",
        "devices": [
            {"device_id": device.device_id, "name": device.name, "lines": jobs.diff_lines(device)}
            for device in shown
        ],
        "hidden_devices": len(event.devices) - len(shown),
        "total": jobs.DiffTotals.of(event.devices).text,
    }


class State:
    """Uploads and jobs for the server's life, and the one-job-at-a-time rule."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.uploads: dict[str, Upload] = {}
        self.jobs: dict[str, Job] = {}
        self.active: Job | None = None
        self.lock = threading.Lock()

    def new_id(self) -> str:
        return secrets.token_hex(8)

    def upload(self, upload_id: str) -> Upload:
        found = self.uploads.get(upload_id)
        if found is None:
            raise PageError("no such sheet (the server may have restarted); upload it again", 404)
        return found

    def job(self, job_id: str) -> Job:
        found = self.jobs.get(job_id)
        if found is None:
            raise PageError("no such run (the server may have restarted)", 404)
        return found

    def start(self, job: Job) -> None:
        with self.lock:
            if self.active is not None and not self.active.done:
                raise PageError(
                    "another run is in progress; wait for it to finish (one run at a time)", 409
                )
            self.active = job
            self.jobs[job.id] = job
        threading.Thread(target=job.run, name=f"job-{job.id}", daemon=True).start()


def create_app(config: ServeConfig) -> Starlette:
    """The ASGI app: the routes behind the Guardrail middleware."""
    config.work_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    state = State(config)
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("batch_share.web", "templates"),
        autoescape=True,  # every template; sheet cells are never marked safe
        undefined=jinja2.StrictUndefined,
    )

    def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = env.get_template(name).render(
            csrf=config.csrf,
            modes=jobs.COMMANDS,
            emulator=config.emulator,
            active=state.active if state.active is not None and not state.active.done else None,
            **context,
        )
        return HTMLResponse(html, status_code=status)

    def fail(request: Request, error: PageError) -> HTMLResponse:
        return render(request, "error.html", error.status, message=str(error))

    async def index(request: Request) -> Response:
        return render(request, "index.html", settings=_default_settings(config), error=None)

    async def upload(request: Request) -> Response:
        try:
            async with request.form(max_files=1, max_fields=10) as form:
                _check_csrf(request, form, config)
                item = form.get("sheet")
                if not isinstance(item, UploadFile) or not item.filename:
                    raise PageError("choose a sheet to upload")
                saved = await asyncio.to_thread(_save_upload, item, state, config)
        except PageError as error:
            return fail(request, error)
        return RedirectResponse(f"/sheets/{saved.id}", status_code=303)

    async def sheet_page(request: Request) -> Response:
        try:
            found = state.upload(request.path_params["upload_id"])
            worksheet = request.query_params.get("sheet") or None
            planned = await asyncio.to_thread(_planned, found, worksheet)
        except PageError as error:
            return fail(request, error)
        except BatchShareError as error:
            return render(
                request, "index.html", 422, settings=_default_settings(config), error=str(error)
            )
        return render(
            request,
            "plan.html",
            upload=found,
            worksheet=worksheet,
            settings=_default_settings(config),
            **_plan_context(planned, config, config.guard),
        )

    async def start(request: Request) -> Response:
        try:
            found = state.upload(request.path_params["upload_id"])
            async with request.form(max_files=0, max_fields=20) as form:
                _check_csrf(request, form, config)
            settings = _parse_settings(form, config)
            worksheet = str(form.get("sheet") or "") or None
            go = form.get("go")
            if go not in {"dry-run", "apply"}:
                raise PageError("choose dry run or apply")
            planned = await asyncio.to_thread(_planned, found, worksheet)
            confirming = go == "apply" and form.get("confirmed") != "yes"
            if confirming and settings.mode == "sync":
                # The numbers to confirm come from the account: the dry run reads them.
                job = _new_job(state, found, worksheet, settings, dry_run=True)
                job.confirming = True
                state.start(job)
                return RedirectResponse(f"/jobs/{job.id}", status_code=303)
            if confirming:
                guard = replace(config.guard, allow_mass_removal=settings.allow_mass_removal)
                return render(
                    request,
                    "confirm.html",
                    upload=found,
                    worksheet=worksheet,
                    settings=settings,
                    **_plan_context(planned, config, guard),
                )
            job = _new_job(state, found, worksheet, settings, dry_run=go == "dry-run")
            state.start(job)
        except PageError as error:
            return fail(request, error)
        except BatchShareError as error:
            return fail(request, PageError(str(error), 422))
        return RedirectResponse(f"/jobs/{job.id}", status_code=303)

    async def job_page(request: Request) -> Response:
        try:
            job = state.job(request.path_params["job_id"])
        except PageError as error:
            return fail(request, error)
        if not job.done:
            return render(request, "progress.html", job=job)
        return render(request, "result.html", job=job, **_result_context(job))

    async def events(request: Request) -> Response:
        try:
            job = state.job(request.path_params["job_id"])
        except PageError as error:
            return fail(request, error)
        last = request.headers.get("last-event-id", "")
        first = int(last) + 1 if last.isdigit() else 0
        return StreamingResponse(
            _event_stream(job, first),
            media_type="text/event-stream",
            headers={"x-accel-buffering": "no"},
        )

    async def download(request: Request) -> Response:
        try:
            job = state.job(request.path_params["job_id"])
            suffix = request.path_params["fmt"]
            if job.result is None:
                raise PageError("this run wrote no report", 404)
            path = await asyncio.to_thread(_report_file, job.result, suffix, config)
        except PageError as error:
            return fail(request, error)
        except BatchShareError as error:
            return fail(request, PageError(str(error), 500))
        stem = Path(job.upload.name).stem or "sheet"
        return FileResponse(path, filename=f"{stem}.result.{suffix}")

    async def retry(request: Request) -> Response:
        try:
            job = state.job(request.path_params["job_id"])
            async with request.form(max_files=0, max_fields=5) as form:
                _check_csrf(request, form, config)
            if job.result is None:
                raise PageError("this run wrote no report to retry", 404)
            again = Upload(
                state.new_id(), job.result.report, job.result.report.name, only=RETRY_STATUSES
            )
            state.uploads[again.id] = again
        except PageError as error:
            return fail(request, error)
        return RedirectResponse(f"/sheets/{again.id}", status_code=303)

    routes = [
        Route("/", index),
        Route("/upload", upload, methods=["POST"]),
        Route("/sheets/{upload_id:str}", sheet_page),
        Route("/sheets/{upload_id:str}/start", start, methods=["POST"]),
        Route("/jobs/{job_id:str}", job_page),
        Route("/jobs/{job_id:str}/events", events),
        Route("/jobs/{job_id:str}/report.{fmt:str}", download),
        Route("/jobs/{job_id:str}/retry", retry, methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    middleware = [
        Middleware(
            Guardrail,
            token=config.token,
            port=config.port,
            max_body=config.max_upload_bytes,
        )
    ]
    app = Starlette(routes=routes, middleware=middleware)
    app.state.serve = state
    return app


def _check_csrf(request: Request, form: FormData, config: ServeConfig) -> None:
    given = form.get("csrf") or request.headers.get("x-csrf-token") or ""
    if not isinstance(given, str) or not secrets.compare_digest(given, config.csrf):
        raise PageError("missing or wrong CSRF token; reload the page and try again", 403)


def _default_settings(config: ServeConfig) -> Settings:
    emulated = config.emulator is not None
    return Settings(
        mode="run",
        api_url=config.emulator.url if emulated and config.emulator else config.api_url,
        profile=config.profile or "",
        rate=config.rate,
        concurrency=config.concurrency,
        scope=config.scope,
        allow_mass_removal=config.guard.allow_mass_removal,
    )


def _parse_settings(form: FormData, config: ServeConfig) -> Settings:
    defaults = _default_settings(config)

    def text(name: str, default: str) -> str:
        value = form.get(name)
        return value.strip() if isinstance(value, str) and value.strip() else default

    try:
        rate = float(text("rate", str(defaults.rate)))
        concurrency = int(text("concurrency", str(defaults.concurrency)))
    except ValueError:
        raise PageError("rate and concurrency must be numbers") from None
    if not 0.1 <= rate <= 1000 or not 1 <= concurrency <= 256:
        raise PageError("rate must be 0.1 to 1000 per second, concurrency 1 to 256")
    mode = text("mode", "run")
    scope = text("scope", defaults.scope)
    if mode not in jobs.COMMANDS or scope not in {"sheet", "account"}:
        raise PageError("unknown mode or scope")
    return Settings(
        mode=mode,
        # The emulator's key must never be sent anywhere but the emulator.
        api_url=defaults.api_url if config.emulator else text("api_url", defaults.api_url),
        profile=text("profile", defaults.profile),
        rate=rate,
        concurrency=concurrency,
        scope=scope,
        allow_mass_removal=form.get("allow_mass_removal") == "yes",
    )


def _safe_name(filename: str) -> str:
    """The user's file name, made harmless as a path (it names the sheet in messages)."""
    name = _UNSAFE_NAME.sub("_", Path(filename.replace("\\", "/")).name).lstrip(".")
    return name[-120:] or "sheet"


def _save_upload(item: UploadFile, state: State, config: ServeConfig) -> Upload:
    upload_id = state.new_id()
    folder = config.work_dir / upload_id
    folder.mkdir(mode=0o700)
    name = _safe_name(item.filename or "sheet")
    path = folder / name
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        item.file.seek(0)
        shutil.copyfileobj(item.file, handle)
    found = Upload(upload_id, path, name, _worksheets(path))
    state.uploads[upload_id] = found
    return found


def _worksheets(path: Path) -> tuple[str, ...]:
    if path.suffix.lower() not in WORKBOOK_SUFFIXES:
        return ()
    from python_calamine import CalamineWorkbook  # noqa: PLC0415

    try:
        with path.open("rb") as handle:
            return tuple(CalamineWorkbook.from_filelike(handle).sheet_names)
    except Exception:  # noqa: BLE001 - the loader will say what is wrong with the file
        return ()


def _planned(found: Upload, worksheet: str | None) -> PlannedSheet:
    if worksheet is not None and worksheet not in found.sheet_names:
        raise PageError("no such worksheet in this file", 404)
    cached = found.plans.get(worksheet)
    if cached is None:
        cached = plan_sheet(found.path, sheet_name=worksheet, only=found.only)
        found.plans[worksheet] = cached
    return cached


def _new_job(
    state: State, found: Upload, worksheet: str | None, settings: Settings, *, dry_run: bool
) -> Job:
    config = state.config
    job_id = state.new_id()
    folder = config.work_dir / f"job-{job_id}"
    folder.mkdir(mode=0o700)
    emulated = config.emulator is not None
    options = jobs.JobOptions(
        command=settings.mode,
        sheet_name=worksheet,
        only=found.only,
        report=folder / f"{Path(found.name).stem or 'sheet'}.result.csv",
        dry_run=dry_run,
        api_url=settings.api_url,
        profile=None if emulated else settings.profile or None,
        credentials=config.emulator.credentials if config.emulator else None,
        per_request=config.per_request,
        guard=replace(config.guard, allow_mass_removal=settings.allow_mass_removal),
        concurrency=settings.concurrency,
        rate=settings.rate,
        retries=config.retries,
        timeout=config.timeout,
        state_dir=config.state_dir,
        scope=settings.scope,
    )
    return Job(job_id, found, worksheet, options, settings)


@dataclass(frozen=True, slots=True)
class CellView:
    text: str
    problems: tuple[Problem, ...] = ()
    waiting: str = ""  # the `name-not-resolved` message of a name the account will resolve


@dataclass(frozen=True, slots=True)
class RowView:
    number: int
    cells: tuple[CellView, ...]
    row_problems: tuple[Problem, ...]  # problems no single cell carries

    @property
    def has_problem(self) -> bool:
        return bool(self.row_problems) or any(cell.problems for cell in self.cells)


def _plan_context(planned: PlannedSheet, config: ServeConfig, guard: Guard) -> dict[str, Any]:
    sheet = planned.sheet
    column_of = planned.validated.column_map
    by_row: dict[int, list[Problem]] = {}
    file_problems = []
    for problem in planned.problems():
        if problem.row <= 0:
            file_problems.append(problem)
        else:
            by_row.setdefault(problem.row, []).append(problem)
    shown = list(range(min(sheet.row_count, TABLE_LIMIT)))
    if sheet.row_count > TABLE_LIMIT:  # rows with problems are always shown
        numbers = sheet.row_numbers
        extra = np.flatnonzero(np.isin(numbers[TABLE_LIMIT:], list(by_row))) + TABLE_LIMIT
        shown += [int(i) for i in extra[:TABLE_LIMIT]]
    waiting = _waiting_cells(planned, shown)
    rows = []
    for index in shown:
        number = int(sheet.row_numbers[index])
        if number == 0:
            continue  # a sync report's removal lines have no sheet row
        problems = by_row.get(number, [])
        cells = []
        for column in range(len(sheet.header)):
            here = tuple(p for p in problems if column_of.get(p.column) == column)
            note = waiting.get((index, column), "")
            cells.append(CellView(sheet.cell(column, index), here, note))
        loose = tuple(p for p in problems if p.column not in column_of)
        rows.append(RowView(number, tuple(cells), loose))
    summary = jobs.plan_summary(planned, config.per_request)
    lines, plan = planned.lines, planned.plan
    sent = plan.sent_mask
    adds = int(((lines.action == ACTIONS.index(Action.ADD)) & sent).sum())
    leaves = int(((lines.action == ACTIONS.index(Action.LEAVE)) & sent).sum())
    by_device: dict[str, list[str]] = {}
    for mutation, text in zip(plan.mutations, mutation_preview(planned, None), strict=True):
        by_device.setdefault(", ".join(mutation.device_ids), []).append(text)
    verdict = guard_verdict(planned, guard)
    return {
        "planned": planned,
        "summary": summary,
        "counts": status_counts(planned, None),
        "header": sheet.header,
        "rows": rows,
        "hidden_rows": sheet.row_count - len(rows),
        "file_problems": file_problems,
        "problem_count": len(planned.problems()),
        "devices": list(by_device.items())[:DEVICES_SHOWN],
        "hidden_devices": max(0, len(by_device) - DEVICES_SHOWN),
        "adds": adds,
        "removals": planned.removals,
        "leaves": leaves,
        "refusal": verdict.message if verdict else None,
        "refusal_preview": [f"would {line}" for line in verdict.preview] if verdict else [],
        "mass_removal": bool(verdict and verdict.preview),
        "guard": guard,
        "named_rows": summary["named_rows"],
    }


def _waiting_cells(planned: PlannedSheet, shown: list[int]) -> dict[tuple[int, int], str]:
    """(sheet row index, column) -> message, for the shown cells that name a device or service
    still to be looked up: the offline preview says `not-run` / `name-not-resolved` there, as
    the report of `run --dry-run` does."""
    lines, sheet = planned.lines, planned.sheet
    column_of = planned.validated.column_map
    wanted = waiting_for_names(lines) & np.isin(lines.row, shown)
    found: dict[tuple[int, int], str] = {}
    for line in map(int, np.flatnonzero(wanted)):
        row = int(lines.row[line])
        message = lines.problems[line][2]
        for kind, resolved in (("device", lines.device), ("service", lines.service)):
            typed = getattr(lines, f"{kind}_name")
            if typed is None or typed[line] < 0 or resolved[line] >= 0:
                continue
            by_name = column_of.get(f"{kind}_name")
            named_in_own_column = by_name is not None and sheet.cell(by_name, row).strip()
            column = by_name if named_in_own_column else column_of.get(f"{kind}_id")
            if column is not None:
                found[(row, column)] = message
    return found


def _result_context(job: Job) -> dict[str, Any]:
    result = job.result
    if result is None:
        return {
            "header": (),
            "rows": [],
            "counts": {},
            "hidden_rows": 0,
            "retryable": 0,
            **_diff_context(job),
        }
    header = (*REPORT_COLUMNS, *result.planned.report_extra_columns)
    rows = []
    for row in result.rows():
        rows.append([str(cell) for cell in row])
        if len(rows) == TABLE_LIMIT:
            break
    counts = result.counts
    return {
        "header": header,
        "rows": rows,
        "status_index": REPORT_COLUMNS.index("status"),
        "code_index": REPORT_COLUMNS.index("code"),
        "problem_statuses": PROBLEM_STATUSES,
        "counts": counts,
        "hidden_rows": sum(counts.values()) - len(rows),
        "retryable": sum(counts[s] for s in RETRY_STATUSES),
        "summary": result.summary,
        **_diff_context(job),
    }


def _diff_context(job: Job) -> dict[str, Any]:
    """A sync's difference per device, and for its dry run the numbers to confirm."""
    if job.diff is None:
        return {"diff": None}
    devices = [
        (
            device.device_id,
            device.name,
            [(DIFF_KINDS[line[0]], line) for line in jobs.diff_lines(device)],
        )
        for device in job.diff[:DEVICES_SHOWN]
    ]
    totals = jobs.DiffTotals.of(job.diff)
    # Only a finished dry run that the brake would let through may lead to an apply.
    can_apply = job.dry_run and job.result is not None and job.guard is None and not job.error
    return {
        "diff": devices,
        "diff_totals": totals,
        "hidden_diff_devices": len(job.diff) - len(devices),
        "can_apply": can_apply,
    }


def _report_file(result: jobs.JobResult, suffix: str, config: ServeConfig) -> Path:
    if suffix == "csv" and result.report.suffix == ".csv":
        return result.report
    if suffix not in {"csv", "xlsx"}:
        raise PageError("reports come as csv or xlsx", 404)
    path = result.report.with_suffix(f".{suffix}")
    if not path.exists():
        api_url = config.emulator.url if config.emulator else None
        jobs.write_job_report(
            path,
            result.planned,
            result.outcomes,
            result.summary,
            started=time.time() - result.elapsed,
            api_url=api_url,
        )
    return path


async def _event_stream(job: Job, first: int) -> AsyncIterator[str]:
    """Server-sent events: each job event once, numbered so a reconnect resumes."""
    index = first
    yield "retry: 1000\n\n"
    while True:
        events, done = job.since(index)
        for payload in events:
            yield f"id: {index}\nevent: {payload['type']}\ndata: {json.dumps(payload)}\n\n"
            index += 1
        if done and not events:
            return
        await asyncio.sleep(0.1)
