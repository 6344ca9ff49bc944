"""Frame offsets from people's motion on the Pose2Sim videos (issue 14, item 6).

Two checks, both against a known shift:

1. ``--keypoints``: a real ``keypoints2d.npz`` (from ``mvhand run``); each non-reference
   camera's 2D is shifted by k frames (k in -10..10) and ``estimate_frame_offsets`` must
   return exactly that offset (and 0 elsewhere).
2. ``--videos`` and ``--trimmed``: body keypoints (mvhand's 2D front-end) of the original videos
   and of a copy in which one video lacks its first frames; the difference of the two offset
   sets must be exactly the trim.

    .venv/bin/mvhand calib convert ../shared/data/pose2sim_single/Calib.qca.txt /tmp/s14/cams.toml
    .venv/bin/mvhand run --calib /tmp/s14/cams.toml ../shared/data/pose2sim_single/videos \\
        --out /tmp/s14/run
    .venv/bin/python benchmarks/bench_sync.py --calib /tmp/s14/cams.toml \\
        --keypoints /tmp/s14/run/keypoints2d.npz \\
        [--videos ../shared/data/pose2sim_single/videos --trimmed /tmp/s14/trim/videos]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from mvhand.calibrate import sync
from mvhand.io.calib_convert import load_rig
from mvhand.io.keypoints import load_keypoints


def shifted_keypoints(calib: Path, keypoints: Path, max_offset: int) -> None:
    kp = load_keypoints(keypoints)
    rig = load_rig(calib).subset(kp.cameras)
    C, T, H, J, _ = kp.keypoints_px.shape
    pts = kp.keypoints_px.reshape(C, T, H * J, 2).astype(float)
    sc = kp.scores.reshape(C, T, H * J).astype(float)
    base = sync.estimate_frame_offsets(rig, pts, sc, max_offset)
    print(f"unshifted: offsets {base.offsets}, sub-frame {np.round(base.subframe, 2).tolist()}")
    ok = total = 0
    t0 = time.perf_counter()
    for c in range(1, C):
        for k in (-10, -5, -3, -2, -1, 1, 2, 3, 5, 10):
            true = [0] * C
            true[c] = k
            neg = [-o for o in true]
            res = sync.estimate_frame_offsets(rig, sync.shift_frames(pts, neg),
                                              sync.shift_frames(sc, neg, 0.0), max_offset)
            total += 1
            ok += res.offsets == tuple(true)
            if res.offsets != tuple(true):
                print(f"  {rig.names[c]} shifted by {k:+d}: got {res.offsets} (sub-frame "
                      f"{np.round(res.subframe, 2).tolist()})")
    print(f"{ok}/{total} shifts recovered exactly, {time.perf_counter() - t0:.1f} s")


def trimmed_videos(calib: Path, videos: Path, trimmed: Path, max_offset: int) -> None:
    from mvhand.calibrate import workflow as wf

    rig = load_rig(calib)
    found = {}
    for label, folder in (("original", videos), ("trimmed", trimmed)):
        t0 = time.perf_counter()
        pts, sc = wf.body_keypoints([folder / f"{n}.mp4" for n in rig.names])
        res = sync.estimate_frame_offsets(rig, pts, sc, max_offset)
        found[label] = np.array(res.offsets)
        print(f"{label}: offsets {res.offsets}, sub-frame "
              f"{np.round(res.subframe, 2).tolist()}, reprojection "
              f"{np.round(res.reproj_before_px, 1).tolist()} -> "
              f"{np.round(res.reproj_after_px, 1).tolist()} px "
              f"({time.perf_counter() - t0:.0f} s with the body pass)")
    print(f"trimmed - original: {(found['trimmed'] - found['original']).tolist()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calib", type=Path, required=True)
    ap.add_argument("--keypoints", type=Path)
    ap.add_argument("--videos", type=Path)
    ap.add_argument("--trimmed", type=Path)
    ap.add_argument("--max-offset", type=int, default=15)
    a = ap.parse_args()
    if a.keypoints:
        shifted_keypoints(a.calib, a.keypoints, a.max_offset)
    if a.videos and a.trimmed:
        trimmed_videos(a.calib, a.videos, a.trimmed, a.max_offset)


if __name__ == "__main__":
    main()
