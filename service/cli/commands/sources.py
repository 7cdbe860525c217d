"""``flashloan sources``: the stub government-data server."""

from __future__ import annotations

import click

from service.ops.settings import Settings, SettingsError


@click.group()
def sources() -> None:
    """Run the stub government and bureau sources."""


@sources.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8100, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0 picks a free one).")
def serve(host: str, port: int) -> None:
    """Serve the synthetic world over HTTP with the stub latency, faults and fixtures."""
    from datasources.stub.adapters import StubWorld
    from datasources.stub.behaviour import parse_faults, parse_latency
    from datasources.stub.server import serve as serve_sources

    try:
        settings = Settings.from_env()
        latency = parse_latency(settings.stub_latency_ms)
        faults = parse_faults(settings.stub_faults)
        world = StubWorld.from_file(settings.stub_fixtures)
    except (SettingsError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None

    def ready(server) -> None:
        click.echo(f"stub sources listening on {server.url} "
                   f"(query: POST {server.url}/v1/sources/<scope>/query)", err=False)
        if settings.stub_faults:
            click.echo(f"injected faults: {settings.stub_faults}", err=True)

    try:
        serve_sources(host, port, world, latency, faults, ready=ready)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from None
