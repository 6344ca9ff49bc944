"""Options and helpers shared by several subcommands (the CLI layer: printing is fine here)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    pass

set_option = click.option(
    "--set", "overrides", multiple=True, metavar="KEY=VALUE",
    help="Override a config value, e.g. --set optimizer.w_smoothness=5 (repeatable).",
)  # fmt: skip

units_option = click.option(
    "--units", type=click.Choice(["m", "cm", "mm"]), default=None,
    help="Units of the calibration's translations when the file does not say (default m); "
    "if it does and they differ, results are converted to these units.",
)  # fmt: skip


def print_people_summary(people: dict[str, Any]) -> None:
    """One line per person found (frames with each hand), and who is in hands3d.npz."""
    from rich.console import Console

    console = Console(stderr=True)
    chosen = people.get("person", {}).get("id")
    console.print(f"{people['people_found']} people found")
    for p in people["people"]:
        hf = p["hand_frames"]
        mark = "  -> hands3d.npz" if p["id"] == chosen else ""
        console.print(f"  person {p['id']}: {p['frames']} frames, left hand {hf['left']}, right "
                      f"hand {hf['right']}{'' if p['has_body'] else ' (hands only)'}{mark}")
    n_sw, n_amb = len(people["suspected_identity_switches"]), len(people["ambiguous_frames"])
    console.print(f"  suspected identity switches: {n_sw}; ambiguous frames: {n_amb}")


def print_reconstruction_summary(report: dict[str, Any]) -> None:
    """A short table of the 3D report: completeness and reprojection error per hand."""
    from rich.console import Console
    from rich.table import Table

    rec = report["reconstruction"]
    who = report.get("people", {}).get("person", {}).get("id")
    whose = "" if who is None else f" of person {who}"
    table = Table(title=f"3D hands{whose} ({rec['frames']} frames, units {rec['units']})")
    for col in ("hand", "frames (all joints)", "joints reconstructed", "median reproj. px",
                "median views"):  # fmt: skip
        table.add_column(col)
    for name, h in rec["hands"].items():
        err = h["median_reprojection_error_px"]
        views = h["median_views"]
        table.add_row(name, str(h["frames_complete"]), f"{100 * h['completeness']:.1f} %",
                      "-" if err is None else f"{err:.2f}",
                      "-" if views is None else f"{views:.0f}")  # fmt: skip
    console = Console(stderr=True)
    console.print(table)
    times = ", ".join(f"{k} {v:.2f} s" for k, v in rec["timings_s"].items())
    console.print(f"swapped views repaired: {rec['swapped_views']}; {times}")
