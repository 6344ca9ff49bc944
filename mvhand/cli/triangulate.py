"""``mvhand triangulate``: 2D keypoints + calibration -> 3D hands (``--people``: several
people's imported detections -> everyone's 3D hands, as ``mvhand people``)."""

from __future__ import annotations

from pathlib import Path

import click

from mvhand.cli.common import print_reconstruction_summary, set_option, units_option
from mvhand.cli.people import people_input_options, run_people
from mvhand.io.calib_convert import load_rig


@click.command("triangulate")
@click.option("--calib", "calib_path", required=True, type=click.Path(path_type=Path),
              help="Calibration: anipose TOML, Qualisys QCA, OpenCV YAML or CMU Panoptic JSON.")
@click.option("--keypoints", "kp_path", default=None, type=click.Path(path_type=Path),
              help="2D keypoint file (NPZ, see README 'Formats'); required without --people.")
@click.option("--people", "people", is_flag=True,
              help="Several people: INPUTS are multi-person detections without any identity "
              "across cameras (--format coco|openpose); they are associated across cameras "
              "and time by geometry (as `mvhand people`) and every person-hand is "
              "triangulated from its own views. Writes OUT/hands3d_people.npz, report.json, "
              "config.toml.")  # fmt: skip
@people_input_options(required=False)
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Output folder (created if needed).")
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
              help="TOML with [triangulation] and [optimizer] tables, or a pipeline config "
              "(its [reconstruct] section is used; with --people its [people] section).")
@click.option("--self-calibrate", "self_cal", is_flag=True,
              help="First refine the cameras' poses on the hands, as `mvhand run` does (with "
              "its check on frames the refinement did not see): the refined cameras go to "
              "OUT/calibration.toml, the given ones to OUT/calibration_given.toml.")
@set_option
@units_option
@click.argument("inputs", nargs=-1, type=click.Path(path_type=Path))
def command(calib_path: Path, kp_path: Path | None, people: bool, fmt: str | None,
            table_path: Path | None, cameras: str | None, fps: float | None, out_dir: Path,
            config_path: Path | None, self_cal: bool, overrides: tuple[str, ...],
            units: str | None, inputs: tuple[Path, ...]) -> None:  # fmt: skip
    """Triangulate and optimize 3D hand joints from multi-view 2D keypoints.

    Writes OUT/hands3d.npz, OUT/hands3d.csv, OUT/config.toml, OUT/report.json and
    OUT/calibration.toml (the cameras used, in the output's units).

    With --people, INPUTS are several people's detections (--format coco: one keypoint
    results JSON and --image-table; --format openpose: one folder per camera), associated and
    reconstructed as by `mvhand people`: OUT/hands3d_people.npz (hands3d (T, P, 2, 21, 3),
    person_ids, body3d (T, P, 17, 3), the 2D rows and where each went), report.json, config.toml.
    --config and --set then address the people settings (README "Several people"), e.g.
    --set optimize=true (the optimizer per person-hand; off by default there) or
    --set association.max_speed_mps=4.
    """
    if people:
        if self_cal:
            raise click.UsageError("--self-calibrate goes with --keypoints, not --people")
        if kp_path is not None or fmt is None or not inputs:
            raise click.UsageError("--people takes --format coco|openpose and the detection "
                                   "files as INPUTS, not --keypoints")  # fmt: skip
        run_people(calib_path, fmt, table_path, cameras, fps, out_dir, config_path, overrides,
                   units, inputs)  # fmt: skip
        return
    if kp_path is None or inputs or fmt or table_path or cameras or fps is not None:
        raise click.UsageError("--keypoints FILE is required; INPUTS, --format, --image-table, "
                               "--cameras and --fps go with --people")  # fmt: skip
    _triangulate_keypoints(calib_path, kp_path, out_dir, config_path, overrides, units,
                           self_cal)  # fmt: skip


def _triangulate_keypoints(calib_path: Path, kp_path: Path, out_dir: Path,
                           config_path: Path | None, overrides: tuple[str, ...],
                           units: str | None, self_cal: bool = False) -> None:  # fmt: skip
    from mvhand.config import load_config
    from mvhand.io.keypoints import load_keypoints
    from mvhand.pipeline.triangulate import triangulate_to_folder
    from mvhand.stages.reconstruct import ReconstructConfig, match_cameras

    cfg = load_config(ReconstructConfig, config_path, overrides, section="reconstruct")
    rig = load_rig(calib_path, units)
    kp = load_keypoints(kp_path)
    rig = match_cameras(kp, rig, kp_path)
    inputs = {"calibration": str(calib_path), "keypoints": str(kp_path),
              "cameras": list(kp.cameras)}  # fmt: skip
    from mvhand.calibrate.selfcal import SelfCalibrationConfig

    _, report = triangulate_to_folder(kp, rig, out_dir, cfg, inputs,
                                      SelfCalibrationConfig() if self_cal else None)  # fmt: skip
    print_reconstruction_summary(report)
    if report["warnings"]:
        click.secho(f"{len(report['warnings'])} warning(s): see above and "
                    f"{out_dir / 'report.json'}", fg="yellow", err=True)  # fmt: skip
    given = ", calibration_given.toml" if report.get("self_calibration", {}).get("applied") else ""
    click.echo(f"wrote {out_dir / 'hands3d.npz'}, hands3d.csv, report.json, config.toml, "
               f"calibration.toml{given}")  # fmt: skip
