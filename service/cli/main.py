"""The ``flashloan`` command line: one group, subcommands registered from
``service.cli.commands``."""

from __future__ import annotations

import importlib
import importlib.util

import click

# Each module defines one click command or group named in the tuple; imported lazily by click
# resolution below so that ``flashloan --help`` stays fast and nothing heavy loads at import.
_COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("service.cli.commands.model", "synth"),
    "train": ("service.cli.commands.model", "train"),
    "score": ("service.cli.commands.score", "score"),
    "model": ("service.cli.commands.model", "model"),
    "sources": ("service.cli.commands.sources", "sources"),
    "audit": ("service.cli.commands.audit", "audit"),
    "serve": ("service.cli.commands.serve", "serve"),
    "keys": ("service.cli.commands.keys", "keys"),
    "db": ("service.cli.commands.db", "db"),
    "applications": ("service.cli.commands.applications", "applications"),
    "reasons": ("service.cli.commands.reasons", "reasons"),
    "strategies": ("service.cli.commands.strategies", "strategies"),
    "backtest": ("service.cli.commands.backtest", "backtest"),
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name, (module, _) in _COMMANDS.items() if _available(module))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _COMMANDS.get(cmd_name)
        if target is None or not _available(target[0]):
            return None
        module = importlib.import_module(target[0])
        return getattr(module, target[1])


def _available(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@click.group(cls=_LazyGroup)
@click.version_option(package_name="flashloan")
def main() -> None:
    """Flash-loan decisioning: serve, train, score, gather and audit."""
