"""`batch-share serve`: the page. Parses flags, checks the extra is installed, starts the
server; everything else lives in `batch_share.web`."""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
from pathlib import Path
from typing import Annotated

import typer

from batch_share.cli.options import (
    AllowMassRemovalOpt,
    ApiUrlOpt,
    ConcurrencyOpt,
    MaxRemovalFractionOpt,
    MaxRemovalsOpt,
    PerRequestOpt,
    ProfileOpt,
    RateOpt,
    RetriesOpt,
    StateDirOpt,
    TimeoutOpt,
)
from batch_share.models import DEFAULT_API_URL, PER_REQUEST_DEFAULT, ExitCode

WEB_MODULES = ("jinja2", "multipart", "starlette", "uvicorn")


def serve(
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="TCP port on 127.0.0.1.")
    ] = 8770,
    open_browser: Annotated[
        bool, typer.Option("--open/--no-open", help="Open the page in a browser.")
    ] = True,
    emulator: Annotated[
        bool,
        typer.Option("--emulator", help="Start an in-process emulator and send only to it."),
    ] = False,
    api_url: ApiUrlOpt = DEFAULT_API_URL,
    profile: ProfileOpt = None,
    concurrency: ConcurrencyOpt = 8,
    rate: RateOpt = 10.0,
    retries: RetriesOpt = 6,
    timeout: TimeoutOpt = 30.0,
    per_request: PerRequestOpt = None,
    scope: Annotated[str, typer.Option("--scope", help="Sync scope: sheet or account.")] = "sheet",
    max_removals: MaxRemovalsOpt = 100,
    max_removal_fraction: MaxRemovalFractionOpt = 0.5,
    allow_mass_removal: AllowMassRemovalOpt = False,
    state_dir: StateDirOpt = None,
    max_upload_mb: Annotated[
        float, typer.Option("--max-upload-mb", min=0.001, help="Largest upload accepted.")
    ] = 50.0,
) -> None:
    """Run the same jobs from a local web page on 127.0.0.1 (Ctrl-C to stop)."""
    missing = [name for name in WEB_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        typer.echo(
            f"error: `serve` needs the web extra ({', '.join(missing)} missing): "
            "pip install 'batch-share[web]'",
            err=True,
        )
        raise typer.Exit(int(ExitCode.USAGE))
    if scope not in {"sheet", "account"}:
        raise typer.BadParameter("use sheet or account", param_hint="--scope")
    import base64
    import tempfile
    import webbrowser

    from batch_share.pipeline import Guard
    from batch_share.web.app import EmulatorInfo, ServeConfig
    from batch_share.web.server import bind, page_url, serve_forever

    try:
        sock = bind(port)
    except OSError as error:
        typer.echo(f"error: cannot listen on 127.0.0.1:{port}: {error.strerror}", err=True)
        raise typer.Exit(int(ExitCode.USAGE)) from None
    work_dir = Path(tempfile.mkdtemp(prefix="batch-share-serve-"))
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, work_dir, ignore_errors=True)
        info = None
        if emulator:
            from batch_share.emulator import Emulator, serve_in_thread
            from batch_share.send.auth import Credentials

            handle = stack.enter_context(serve_in_thread(Emulator(devices=50)))
            secret = base64.b64decode(handle.secret)
            info = EmulatorInfo(handle.url, Credentials(handle.key_id, secret, "emulator"), 50)
        config = ServeConfig(
            port=sock.getsockname()[1],
            work_dir=work_dir,
            api_url=api_url,
            profile=profile,
            concurrency=concurrency,
            rate=rate,
            retries=retries,
            timeout=timeout,
            scope=scope,
            per_request=per_request or PER_REQUEST_DEFAULT,
            guard=Guard(max_removals, max_removal_fraction, allow_mass_removal),
            state_dir=state_dir,
            max_upload_bytes=int(max_upload_mb * 1024 * 1024),
            emulator=info,
        )
        url = page_url(config)
        if info is not None:
            typer.echo(f"emulator: sending only to the in-process emulator at {info.url}")
        typer.echo(f"batch-share serve: open {url}", nl=True)
        typer.echo("(the token in the URL is the key to the page; Ctrl-C stops the server)")
        if open_browser:
            webbrowser.open(url)
        serve_forever(config, sock)
