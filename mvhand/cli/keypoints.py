"""``mvhand keypoints``: import other tools' 2D keypoints, and summarise a keypoint file."""

from __future__ import annotations

from pathlib import Path

import click


@click.group("keypoints")
def command() -> None:
    """Import 2D hand keypoints into mvhand's NPZ format, and inspect keypoint files."""


@command.command("import")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--format", "fmt", required=True,
              type=click.Choice(["openpose", "coco-wholebody", "array"]),
              help="openpose: one folder of *_keypoints.json per camera; coco-wholebody: one "
              "COCO JSON (133 keypoints) per camera; array: one .npy (C, T, 21, 2|3), "
              "-1 or NaN = missing.")  # fmt: skip
@click.option("--calib", "calib_path", required=True, type=click.Path(path_type=Path),
              help="Calibration (any format `mvhand calib convert` reads): camera names, "
              "order and image sizes.")  # fmt: skip
@click.option("--out", "out_path", required=True, type=click.Path(path_type=Path),
              help="Output 2D keypoint file (.npz).")
@click.option("--cameras", default=None, metavar="NAMES",
              help="Camera name of each input (array: of each array camera), comma-separated. "
              "Default: match input names to camera names, else natural order.")  # fmt: skip
@click.option("--hand", type=click.Choice(["left", "right"]), default=None,
              help="array: the hand the array holds (default right); others: keep only it.")
@click.option("--fps", type=float, default=None, help="Frame rate to record.")
@click.option("--person", type=click.Choice(["confident", "first"]), default="confident",
              show_default=True, help="openpose: which person of each frame.")
@click.option("--frame-order", type=click.Choice(["name", "id"]), default="name",
              show_default=True, help="coco-wholebody: order frames by file name or image id.")
def import_(inputs: tuple[Path, ...], fmt: str, calib_path: Path, out_path: Path,
            cameras: str | None, hand: str | None, fps: float | None, person: str,
            frame_order: str) -> None:  # fmt: skip
    """Import 2D hand keypoints from INPUTS into an mvhand keypoint file (NPZ)."""
    from mvhand.io.calib_convert import load_any_calibration
    from mvhand.io.importers import import_keypoints
    from mvhand.io.keypoints import save_keypoints

    rig = load_any_calibration(calib_path)
    names = [n.strip() for n in cameras.split(",") if n.strip()] if cameras else None
    kp = import_keypoints(fmt, inputs, rig, names, hand, fps, person=person,
                          frame_order=frame_order)  # fmt: skip
    save_keypoints(out_path, kp)
    _print_info(kp, out_path.name)
    click.echo(f"wrote {out_path}: {kp.n_cameras} cameras x {kp.n_frames} frames")



@command.command("info")
@click.argument("file", type=click.Path(path_type=Path))
def info(file: Path) -> None:
    """Summarise a 2D keypoint file: cameras, frames, completeness and scores per hand."""
    from mvhand.io.keypoints import load_keypoints

    _print_info(load_keypoints(file), file.name)


def _print_info(kp, title: str) -> None:
    import numpy as np
    from rich.console import Console
    from rich.table import Table

    fps = "unknown" if kp.fps is None else f"{kp.fps:g}"
    table = Table(title=f"{title}: {kp.n_cameras} cameras, {kp.n_frames} frames, fps {fps}")
    table.add_column("camera")
    for hand in kp.hands:
        table.add_column(f"{hand}: joints seen", justify="right")
        table.add_column(f"{hand}: mean score", justify="right")
    table.add_column("x range px", justify="right")
    table.add_column("y range px", justify="right")
    for c, name in enumerate(kp.cameras):
        row = [name]
        for h in range(len(kp.hands)):
            valid = np.isfinite(kp.keypoints_px[c, :, h, :, 0])
            row.append(f"{100 * valid.mean():.1f} %")
            row.append(f"{kp.scores[c, :, h][valid].mean():.2f}" if valid.any() else "-")
        xy = kp.keypoints_px[c][np.isfinite(kp.keypoints_px[c]).all(axis=-1)]
        for a in (0, 1):
            row.append(f"{xy[:, a].min():.0f}..{xy[:, a].max():.0f}" if xy.size else "-")
        table.add_row(*row)
    Console().print(table)
