"""``mvhand triangulate``: 2D keypoints + calibration -> 3D hands."""

from __future__ import annotations

from pathlib import Path

import click

from mvhand.cli.common import load_rig, print_reconstruction_summary, set_option, units_option


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
    from mvhand.config import config_to_toml, load_config
    from mvhand.io.calibration import save_calibration
    from mvhand.io.keypoints import load_keypoints
    from mvhand.stages.reconstruct import (
        ReconstructConfig,
        match_cameras,
        run_reconstruct,
        write_reconstruction,  # fmt: skip
    )

    cfg = load_config(ReconstructConfig, config_path, overrides, section="reconstruct")
    rig = load_rig(calib_path, units)
    kp = load_keypoints(kp_path)
    rig = match_cameras(kp, rig, kp_path)
    result = run_reconstruct(kp, rig, cfg)
    extra = {"inputs": {"calibration": str(calib_path), "keypoints": str(kp_path),
                        "cameras": list(kp.cameras)}}  # fmt: skip
    report = write_reconstruction(out_dir, result, config_to_toml(cfg), extra, kp.fps)
    save_calibration(out_dir / "calibration.toml", rig)
    print_reconstruction_summary(report)
    click.echo(f"wrote {out_dir / 'hands3d.npz'}, hands3d.csv, report.json, config.toml")
