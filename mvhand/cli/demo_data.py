"""``mvhand demo-data``: generate a small synthetic multi-camera sample with known 3D truth."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("demo-data")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Folder to write calibration.toml, keypoints2d.npz and truth3d.npz into.")
@click.option("--cameras", default=6, show_default=True, type=click.IntRange(2, 64))
@click.option("--frames", default=120, show_default=True, type=click.IntRange(1, 100000))
@click.option("--speed", default="slow", show_default=True,
              type=click.Choice(["static", "slow", "fast"]))
@click.option("--seed", default=0, show_default=True, type=int)
def command(out_dir: Path, cameras: int, frames: int, speed: str, seed: int) -> None:
    """Write a synthetic operating-room sample: cameras around a table, two moving hands and
    detector-like 2D keypoints (noise, dropouts, outliers, left/right swaps)."""
    from mvhand.core.synthetic import make_hand_motion, make_or_rig, render_detections
    from mvhand.io.atomic import save_npz_atomic
    from mvhand.io.calibration import save_calibration
    from mvhand.io.keypoints import save_keypoints

    rig = make_or_rig(cameras, seed=seed)
    truth = make_hand_motion(frames, speed=speed, seed=seed)
    kp = render_detections(rig, truth, seed=seed)
    save_calibration(out_dir / "calibration.toml", rig, {"source": "mvhand demo-data"})
    save_keypoints(out_dir / "keypoints2d.npz", kp)
    save_npz_atomic(out_dir / "truth3d.npz", keypoints3d=truth, units="m")
    click.echo(f"wrote {out_dir}/calibration.toml, keypoints2d.npz and truth3d.npz "
               f"({cameras} cameras, {frames} frames)")  # fmt: skip
