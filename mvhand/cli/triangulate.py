"""``mvhand triangulate``: 2D keypoints + calibration -> 3D hands."""

from __future__ import annotations

from pathlib import Path

import click

from mvhand.cli.common import print_reconstruction_summary, set_option, units_option
from mvhand.io.calib_convert import load_rig


@click.command("triangulate")
@click.option("--calib", "calib_path", required=True, type=click.Path(path_type=Path),
              help="Calibration: anipose TOML, Qualisys QCA, OpenCV YAML or CMU Panoptic JSON.")
@click.option("--keypoints", "kp_path", required=True, type=click.Path(path_type=Path),
              help="2D keypoint file (NPZ, see README 'Formats').")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Output folder (created if needed).")
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
              help="TOML with [triangulation] and [optimizer] tables, or a pipeline config "
              "(its [reconstruct] section is used).")
@set_option
@units_option
def command(calib_path: Path, kp_path: Path, out_dir: Path, config_path: Path | None,
            overrides: tuple[str, ...], units: str | None) -> None:  # fmt: skip
    """Triangulate and optimize 3D hand joints from multi-view 2D keypoints.

    Writes OUT/hands3d.npz, OUT/hands3d.csv, OUT/config.toml, OUT/report.json and
    OUT/calibration.toml (the cameras used, in the output's units).
    """
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
    _, report = triangulate_to_folder(kp, rig, out_dir, cfg, inputs)
    print_reconstruction_summary(report)
    if report["warnings"]:
        click.secho(f"{len(report['warnings'])} warning(s): see above and "
                    f"{out_dir / 'report.json'}", fg="yellow", err=True)  # fmt: skip
    click.echo(f"wrote {out_dir / 'hands3d.npz'}, hands3d.csv, report.json, config.toml, "
               "calibration.toml")  # fmt: skip
