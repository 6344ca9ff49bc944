"""``mvhand people``: several people's 2D detections (COCO or OpenPose) -> everyone's 3D hands.

The import, association, 3D and output (:func:`run_people`) and its input options
(:func:`people_input_options`) are shared with ``mvhand triangulate --people``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from mvhand.cli.common import set_option, units_option

FORMATS = ("coco", "openpose")


def people_input_options(required: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--format``, ``--image-table``, ``--cameras``, ``--fps`` (``--format`` required or not)."""
    options = [
        click.option("--format", "fmt", required=required, default=None,
                     type=click.Choice(FORMATS),
                     help="coco: one keypoint results JSON (COCO-17 or COCO-WholeBody) for all "
                     "cameras, with --image-table; openpose: one folder of per-frame JSON "
                     "(several people per file) per camera."),
        click.option("--image-table", "table_path", type=click.Path(path_type=Path),
                     default=None, help="coco: CSV (image_id,camera,frame) or JSON list "
                     "mapping image ids to camera and frame."),
        click.option("--cameras", default=None,
                     help="openpose: comma-separated camera names of the folders, in order "
                     "(default: the folder names)."),
        click.option("--fps", type=float, default=None, help="Frame rate (default 30)."),
    ]  # fmt: skip

    def apply(f: Callable[..., Any]) -> Callable[..., Any]:
        for opt in reversed(options):
            f = opt(f)
        return f

    return apply


def run_people(calib_path: Path, fmt: str, table_path: Path | None, cameras: str | None,
               fps: float | None, out_dir: Path, config_path: Path | None,
               overrides: tuple[str, ...], units: str | None,
               inputs: tuple[Path, ...]) -> None:  # fmt: skip
    """Import several people's detections, associate them, reconstruct every person-hand and
    write OUT/hands3d_people.npz, OUT/report.json and OUT/config.toml as one run-folder set."""
    from mvhand.config import config_to_toml, load_config
    from mvhand.errors import InputError
    from mvhand.io.calib_convert import load_rig
    from mvhand.io.importers import import_coco_people, import_openpose_people, read_image_table
    from mvhand.io.people import save_people
    from mvhand.io.runfolder import RunFolder
    from mvhand.stages.people import PeopleConfig, reconstruct_people

    cfg = load_config(PeopleConfig, config_path, overrides, section="people")
    rig = load_rig(calib_path, units)
    if fmt == "coco":
        if table_path is None or len(inputs) != 1:
            raise InputError("--format coco takes one results JSON and --image-table")
        det = import_coco_people(inputs[0], read_image_table(table_path), rig, fps)
    else:
        names = [c.strip() for c in cameras.split(",")] if cameras else None
        det = import_openpose_people(list(inputs), rig, names, fps)
    if len(det) == 0:
        raise InputError("no person detections in the input", inputs[0])
    res = reconstruct_people(rig, det, cfg)
    report = {"inputs": {"calibration": str(calib_path), "format": fmt,
                         "inputs": [str(p) for p in inputs]}, **res.report}  # fmt: skip
    with RunFolder(out_dir).transaction() as tx:  # one set, published whole
        save_people(tx.path("hands3d_people"), res, det, run_id=tx.run_id)
        tx.write_report(report)
        tx.write_config(config_to_toml(cfg))
    _summary(res.report)
    click.echo(f"wrote {out_dir / 'hands3d_people.npz'}, report.json, config.toml")


@click.command("people")
@click.option("--calib", "calib_path", required=True, type=click.Path(path_type=Path),
              help="Calibration: anipose TOML, Qualisys QCA, OpenCV YAML or CMU Panoptic JSON.")
@people_input_options(required=True)
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Output folder (created if needed).")
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
              help="TOML with the people settings (or a pipeline config's [people] section).")
@set_option
@units_option
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
def command(calib_path: Path, fmt: str, table_path: Path | None, cameras: str | None,
            fps: float | None, out_dir: Path, config_path: Path | None,
            overrides: tuple[str, ...], units: str | None, inputs: tuple[Path, ...]) -> None:
    """Associate several people across cameras and time and reconstruct their hands and arms.

    Writes OUT/hands3d_people.npz (hands3d (T, P, 2, 21, 3), person_ids (P,), body3d
    (T, P, 17, 3), ...), OUT/report.json and OUT/config.toml (one set, see mvhand.io.runfolder).
    The same as `mvhand triangulate --people`.
    """
    run_people(calib_path, fmt, table_path, cameras, fps, out_dir, config_path, overrides,
               units, inputs)  # fmt: skip


def _summary(report: dict) -> None:
    click.echo(f"{report['people_found']} people found", err=True)
    for p in report["people"]:
        hf = p["hand_frames"]
        click.echo(f"  person {p['id']}: {p['frames']} frames, left hand {hf['left']}, right "
                   f"hand {hf['right']}{'' if p['has_body'] else ' (hands only)'}", err=True)
    n_sw, n_amb = len(report["suspected_identity_switches"]), len(report["ambiguous_frames"])
    click.echo(f"  suspected identity switches: {n_sw}; ambiguous frames: {n_amb}", err=True)
    for w in report["warnings"]:
        click.secho(f"warning: {w}", fg="yellow", err=True)
