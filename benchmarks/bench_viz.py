"""Render and overlay speed: a synthetic 12-camera run, and a real run folder if given.

    .venv/bin/python benchmarks/bench_viz.py [--run demo_out/pose2sim] [--videos DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from test_viz_geometry import write_synthetic_run  # noqa: E402

from mvhand.viz.overlay import write_overlays  # noqa: E402
from mvhand.viz.render import render_run  # noqa: E402
from mvhand.viz.rundata import load_run  # noqa: E402


def renders(name: str, folder: Path, tmp: Path) -> None:
    run = load_run(folder)
    for view in ("orbit", "overview", "hand:right", run.rig.names[0]):
        r = render_run(run, tmp / f"{view.replace(':', '_')}.mp4", view, (1280, 720))
        print(f"| {name} | render {view} | {r.n_frames} frames at 1280x720 | {r.fps:.1f} fps |")


def overlays(folder: Path, videos_dir: Path, tmp: Path) -> None:
    run = load_run(folder)
    videos = {c: videos_dir / f"{c}.mp4" for c in run.keypoints2d.cameras}
    C = len(videos)
    for grid in (True, False):
        t0 = time.perf_counter()
        write_overlays(tmp / "ov", videos, run.keypoints2d, run.hands3d, run.rig,
                       run.frame_indices, grid=grid)  # fmt: skip
        dt = time.perf_counter() - t0
        print(f"| {folder.name} | overlay {C} cameras, grid={grid} | {run.n_frames} frames | "
              f"{run.n_frames / dt:.1f} frames/s ({C * run.n_frames / dt:.1f} camera-frames/s) |")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, default=REPO / "demo_out" / "pose2sim")
    ap.add_argument("--videos", type=Path,
                    default=REPO.parent / "shared" / "data" / "pose2sim_single" / "videos")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        syn = tmp / "synthetic"
        write_synthetic_run(syn, n_frames=100, n_cameras=12, size_px=(2160, 3840))
        print("| run | what | size | speed |\n|---|---|---|---|")
        renders("synthetic 12 cameras", syn, tmp)
        if (args.run / "hands3d.npz").is_file():
            renders(args.run.name, args.run, tmp)
            if args.videos.is_dir():
                overlays(args.run, args.videos, tmp)
        else:
            print(f"(no run at {args.run}: `make demo` makes one)")
