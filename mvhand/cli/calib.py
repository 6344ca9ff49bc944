"""``mvhand calib``: convert calibrations between formats and inspect a rig."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

_UNITS = click.Choice(["m", "cm", "mm"])
_IN_FORMATS = ("auto", "anipose", "qca", "opencv", "panoptic")


def _input_options(func: Any) -> Any:
    """The options that say how to read a calibration (shared by convert and show)."""
    func = click.option(
        "--camera-type", default=None, metavar="TYPE",
        help="Panoptic only: keep the cameras of this type (hd, vga, kinect-color).",
    )(func)  # fmt: skip
    func = click.option(
        "--in-units", type=_UNITS, default=None,
        help="Units of the input's translations when the file does not record them (anipose "
        "TOML without [metadata] units, OpenCV YAML without 'units'); default m. QCA is "
        "always mm and Panoptic always cm.",
    )(func)  # fmt: skip
    func = click.option(
        "--from", "fmt", type=click.Choice(_IN_FORMATS), default="auto", show_default=True,
        help="Input format; auto detects it from the name and content.",
    )(func)  # fmt: skip
    return func


def _load(path: Path, fmt: str, units: str | None, in_units: str | None,
          camera_type: str | None, cameras: str | None = None):  # fmt: skip
    from mvhand.errors import CalibrationError
    from mvhand.io.calib_convert import load_any_calibration

    rig = load_any_calibration(path, fmt, units, in_units, camera_type)
    if cameras:
        names = [n.strip() for n in cameras.split(",") if n.strip()]
        try:
            rig = rig.subset(names)
        except CalibrationError as exc:
            raise CalibrationError(str(exc), path) from None
    return rig


def _fmt_vec(v: Any, digits: int = 3) -> str:
    return "(" + ", ".join(f"{x:.{digits}f}" for x in v) + ")"


def print_rig(rig: Any, title: str) -> list[str]:
    """Print the per-camera table and the rig's warnings; return the warnings."""
    from rich.console import Console
    from rich.table import Table

    from mvhand.io.calib_convert import attention_point, rig_report

    rows, warnings = rig_report(rig)
    point, _ = attention_point(rig)
    table = Table(title=title)
    for col in ("camera", "size px", "focal px", f"position {rig.units}", "viewing direction",
                f"to centre {rig.units}", "off-axis deg", "centre at px"):  # fmt: skip
        table.add_column(col, justify="left" if col == "camera" else "right", no_wrap=True)
    digits = {"m": 3, "cm": 1, "mm": 0}[rig.units]
    for r in rows:
        u, v = r["centre_px"]
        at = "behind" if not (u == u) else f"({u:.0f}, {v:.0f})"  # NaN check
        table.add_row(r["name"], f"{r['size_px'][0]}x{r['size_px'][1]}", f"{r['focal_px']:.1f}",
                      _fmt_vec(r["center"], digits), _fmt_vec(r["view_dir"], 2),
                      f"{r['distance']:.{digits}f}",
                      f"{r['off_axis_deg']:.1f}", at)  # fmt: skip
    console = Console()
    if console.width < 140:  # the table needs room; a narrow or piped output wraps instead
        console = Console(width=140)
    console.print(table)
    console.print(f"scene centre (point nearest all optical axes): "
                  f"{_fmt_vec(point, digits)} {rig.units}")
    for w in warnings:
        console.print(f"[yellow]warning:[/yellow] {w}")
    if not warnings:
        console.print("[green]no problems found[/green]")
    return warnings


@click.group("calib")
def command() -> None:
    """Convert camera calibrations to anipose TOML, and inspect them."""


@command.command("convert")
@click.argument("src", type=click.Path(path_type=Path))
@click.argument("dst", type=click.Path(path_type=Path))
@_input_options
@click.option("--units", type=_UNITS, default="m", show_default=True,
              help="Units of the output's translations (recorded in the output).")
@click.option("--to", "out_fmt", type=click.Choice(["auto", "anipose", "opencv"]),
              default="auto", show_default=True,
              help="Output format; auto: .toml -> anipose, .yml/.yaml -> one OpenCV YAML file, "
              "a folder -> EasyMocap intri.yml + extri.yml.")  # fmt: skip
@click.option("--cameras", default=None, metavar="NAMES",
              help="Keep only these cameras, comma-separated, in this order.")
@click.option("-q", "--quiet", is_flag=True, help="Do not print the camera table.")
def convert(src: Path, dst: Path, fmt: str, in_units: str | None, camera_type: str | None,
            units: str, out_fmt: str, cameras: str | None, quiet: bool) -> None:  # fmt: skip
    """Convert calibration SRC (anipose TOML, Qualisys QCA, OpenCV/EasyMocap YAML, CMU Panoptic
    JSON) to DST (anipose TOML by default, with [metadata] units)."""
    from mvhand.io.calib_convert import detect_format, save_any_calibration

    src_fmt = detect_format(src) if fmt == "auto" else fmt
    rig = _load(src, src_fmt, units, in_units, camera_type, cameras)
    meta = {"source": src.name, "source_format": src_fmt}
    written = save_any_calibration(dst, rig, out_fmt, meta)
    if not quiet:
        print_rig(rig, f"{src.name} ({src_fmt}) -> {dst.name}")
    click.echo(f"wrote {', '.join(str(p) for p in written)}: {len(rig)} cameras, "
               f"units {rig.units}")  # fmt: skip


@command.command("show")
@click.argument("cal", type=click.Path(path_type=Path))
@_input_options
@click.option("--units", type=_UNITS, default=None,
              help="Show translations in these units (default: the file's).")
@click.option("--check", is_flag=True,
              help="Exit with status 1 when there are warnings (for scripts).")
def show(cal: Path, fmt: str, in_units: str | None, camera_type: str | None,
         units: str | None, check: bool) -> None:  # fmt: skip
    """Print each camera of CAL (size, focal, position, viewing direction, distance to the
    scene centre) and warn about suspicious rigs."""
    rig = _load(cal, fmt, units, in_units, camera_type)
    warnings = print_rig(rig, f"{cal.name}: {len(rig)} cameras, units {rig.units}")
    if check and warnings:
        raise SystemExit(1)
