"""`batch-share emulator`: a local remote.it-compatible API for trying things safely."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from batch_share.models import ExitCode


def emulator(
    port: Annotated[
        int, typer.Option("--port", help="TCP port on 127.0.0.1 (0: any free).")
    ] = 8765,
    devices: Annotated[int, typer.Option("--devices", min=1, help="Seeded devices.")] = 1000,
    services_per_device: Annotated[
        int, typer.Option("--services-per-device", min=0, help="Seeded services per device.")
    ] = 3,
    key_id: Annotated[str | None, typer.Option("--key-id", help="Access key id to accept.")] = None,
    secret: Annotated[
        str | None, typer.Option("--secret", help="Base64 secret to accept (default: random).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed for the fault dice.")] = 0,
    latency: Annotated[float, typer.Option("--latency", help="Seconds added per request.")] = 0.0,
    p503: Annotated[float, typer.Option("--p503", help="Probability of a 503.")] = 0.0,
    p429: Annotated[float, typer.Option("--p429", help="Probability of a 429.")] = 0.0,
    retry_after: Annotated[
        float, typer.Option("--retry-after", help="Retry-After seconds sent with --p429.")
    ] = 1.0,
    p_drop: Annotated[
        float, typer.Option("--p-drop", help="Probability of dropping the connection.")
    ] = 0.0,
    p_apply_then_drop: Annotated[
        float,
        typer.Option("--p-apply-then-drop", help="Probability of applying, then dropping."),
    ] = 0.0,
    rate_limit: Annotated[
        float | None, typer.Option("--rate-limit", help="Requests/s before answering 429.")
    ] = None,
    alias_cap: Annotated[
        int | None, typer.Option("--alias-cap", help="Most share fields in one request.")
    ] = None,
    failing_device: Annotated[
        list[str] | None,
        typer.Option("--failing-device", help="Device id whose shares always fail (repeatable)."),
    ] = None,
    unregistered_email: Annotated[
        list[str] | None,
        typer.Option("--unregistered-email", help="Address with no account (repeatable)."),
    ] = None,
    seed_access: Annotated[
        Path | None,
        typer.Option(
            "--seed-access",
            help="CSV of access that exists from the start (device_id, service_id, email, "
            "scripting).",
        ),
    ] = None,
    silent_drop_device: Annotated[
        list[str] | None,
        typer.Option(
            "--silent-drop-device", help="Device whose shares answer true but are not stored."
        ),
    ] = None,
    redirect_to: Annotated[
        str | None, typer.Option("--redirect-to", help="Answer every request 307 to this URL.")
    ] = None,
    html_200: Annotated[
        bool, typer.Option("--html-200", help="Answer every request 200 with an HTML page.")
    ] = False,
    truncate_body: Annotated[
        bool, typer.Option("--truncate-body", help="Send only the first half of each answer.")
    ] = False,
    huge_body_bytes: Annotated[
        int, typer.Option("--huge-body-bytes", min=0, help="Pad each answer to this many bytes.")
    ] = 0,
    trickle_seconds: Annotated[
        float,
        typer.Option(
            "--trickle-seconds", min=0.0, help="Send answers a byte at a time, this apart."
        ),
    ] = 0.0,
) -> None:
    """Serve a local remote.it-compatible API with a throwaway key, for trying things safely."""
    try:
        from batch_share.emulator import read_seed_file, serve
    except ImportError as missing:
        typer.echo(
            f"error: the emulator needs the `emulator` extra ({missing.name} is not installed): "
            "pip install 'batch-share[emulator]'",
            err=True,
        )
        raise typer.Exit(int(ExitCode.USAGE)) from None

    try:
        seeded = read_seed_file(seed_access) if seed_access is not None else []
        serve(
            port,
            devices=devices,
            services_per_device=services_per_device,
            key_id=key_id,
            secret=secret,
            seed=seed,
            latency=latency,
            p503=p503,
            p429=p429,
            retry_after=retry_after,
            p_drop=p_drop,
            p_apply_then_drop=p_apply_then_drop,
            rate_limit=rate_limit,
            alias_cap=alias_cap,
            failing_devices=tuple(failing_device or ()),
            unregistered_emails=tuple(unregistered_email or ()),
            silent_drop_devices=tuple(silent_drop_device or ()),
            seed_access=seeded,
            redirect_to=redirect_to,
            html_200=html_200,
            truncate_body=truncate_body,
            huge_body_bytes=huge_body_bytes,
            trickle_seconds=trickle_seconds,
        )
    except (ValueError, OSError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(int(ExitCode.USAGE)) from None
