"""``liteq dashboard``: the web dashboard, ``/metrics`` and the JSON API (docs/dashboard.md)."""

from __future__ import annotations

import click

from liteq.cli.base import cli, db_argument, open_existing


@cli.command()
@db_argument
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True)
@click.option("--read-only", is_flag=True, help="Refuse every action (requeue, purge, pause...).")
@click.option(
    "--token",
    envvar="LITEQ_DASHBOARD_TOKEN",
    metavar="TOKEN",
    help="Every request must carry it (log in with /login?token=...). Or LITEQ_DASHBOARD_TOKEN.",
)
def dashboard(db: str, host: str, port: int, read_only: bool, token: str | None) -> None:
    """Serve the web dashboard: pages at /, Prometheus at /metrics, JSON at /api/...

    Listens on 127.0.0.1 unless --host says otherwise. Stop it with Ctrl-C.
    """
    from liteq.web import dashboard_app  # noqa: PLC0415 - only this command needs it
    from liteq.web.security import LOOPBACK_NAMES  # noqa: PLC0415
    from liteq.web.server import build_server, exposure_warning, is_loopback  # noqa: PLC0415

    queue = open_existing(db)
    warning = exposure_warning(host, token)
    if warning:
        click.echo(warning, err=True)
    try:
        # On localhost, answer only to localhost names (DNS rebinding); elsewhere any name.
        hosts = LOOPBACK_NAMES | {host.strip("[]").lower()} if is_loopback(host) else None
        app = dashboard_app(queue, token=token, read_only=read_only, allowed_hosts=hosts)
        server = build_server(app, host, port)
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from None
    bound_port = server.server_address[1]
    shown = f"[{host}]" if ":" in host else host
    mode = " (read-only)" if read_only else ""
    click.echo(f"liteq dashboard on http://{shown}:{bound_port}/{mode} for {db}", err=True)
    if token:
        click.echo(f"log in at http://{shown}:{bound_port}/login", err=True)
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        queue.close()
