"""The ``mvhand`` command: a click group whose subcommands are imported only when used.

Subcommands are listed in ``COMMANDS`` (name -> "module:attribute"); importing a subcommand
module must stay cheap, so ``mvhand --help`` is fast.
"""

from __future__ import annotations

import importlib
import logging
import sys

import click

from mvhand import __version__
from mvhand.errors import MvhandError

COMMANDS: dict[str, str] = {
    "triangulate": "mvhand.cli.triangulate:command",
    "calib": "mvhand.cli.calib:command",
    "keypoints": "mvhand.cli.keypoints:command",
    "demo-data": "mvhand.cli.demo_data:command",
    "eval": "mvhand.cli.eval:command",
    "bench": "mvhand.cli.bench:command",
    "run": "mvhand.cli.run:command",
    "fit": "mvhand.cli.fit:command",
    "view": "mvhand.cli.view:command", "render": "mvhand.cli.render:command",
    "overlay": "mvhand.cli.overlay:command",
    "people": "mvhand.cli.people:command",
    "export": "mvhand.cli.export:command", "batch": "mvhand.cli.batch:command",
}


class LazyGroup(click.Group):
    """A click group that imports a subcommand's module on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except MvhandError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(2)
        except OSError as exc:  # an ordinary file-system problem: one line, no traceback
            where = f"{exc.filename}: " if exc.filename else ""
            click.secho(f"error: {where}{exc.strerror or exc}", fg="red", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.secho("interrupted: nothing of this run was published (earlier outputs in "
                        "the folder are unchanged); per-camera 2D results already computed "
                        "are kept in OUT/cache, so the same command resumes", fg="yellow",
                        err=True)  # fmt: skip
            sys.exit(130)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mvhand")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def cli(verbose: int) -> None:
    """mvhand: multi-view 3D hand pose for surgical recordings."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("mvhand").setLevel(min(level, logging.INFO))


def main() -> None:
    """Console-script entry point."""
    cli()


if __name__ == "__main__":
    main()
