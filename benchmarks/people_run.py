"""Issue 10's checks on a several-people ``mvhand run`` folder (no ground truth needed).

Per output hand of every person (``hands3d_people.npz``, triangulation per person-hand) and
for the chosen person's optimized hands (``hands3d.npz``): frames with 3D, the share of those
frames in which the hand reprojects onto the same person's body wrist in at least two views,
the largest wrist speed (a jump between people shows as metres per second), left/right against
the person's 3D arm, bone-length spread and median reprojection error::

    mvhand calib convert ../shared/data/pose2sim_multi/Calib.qca.txt /tmp/p2s_multi.toml
    mvhand run --calib /tmp/p2s_multi.toml ../shared/data/pose2sim_multi/videos \\
        --out /tmp/multi --set detect.max_people=4
    .venv/bin/python benchmarks/people_run.py /tmp/multi
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
from people_real import figures

from mvhand.io.calib_convert import load_rig
from mvhand.io.people import load_people
from mvhand.io.results import load_hands3d


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", type=Path, help="run folder with hands3d_people.npz")
    args = ap.parse_args()
    pf = load_people(args.run / "hands3d_people.npz")
    rig = load_rig(args.run / "calibration.toml", pf.result.units).subset(pf.detections.cameras)
    fps = pf.detections.fps or 30.0
    rows = {f"{k} (hands3d_people.npz)": v for k, v in
            figures(pf.result, pf.detections, rig, fps).items()}  # fmt: skip
    h3 = load_hands3d(args.run / "hands3d.npz")
    slot = int(np.flatnonzero(pf.result.person_ids == pf.primary)[0])
    hands = pf.result.hands3d.copy()
    hands[:, slot] = h3.keypoints3d
    err = pf.result.hands_reprojection_error_px.copy()
    err[:, slot] = h3.reprojection_error_px
    chosen = dataclasses.replace(pf.result, hands3d=hands, hands_reprojection_error_px=err)
    for k, v in figures(chosen, pf.detections, rig, fps).items():
        if k.startswith(f"p{pf.primary}_"):
            rows[f"{k} (hands3d.npz, 3D stage)"] = v
    print(f"{'hand':40s} frames  own body>=2 views  max wrist m/s  side=arm  bone CV  "
          "median px")
    for k, v in rows.items():
        side = "-" if v["side_matches_arm"] is None else f"{100 * v['side_matches_arm']:.0f} %"
        print(f"{k:40s} {v['frames']:6d}  {100 * v['on_own_body_2plus_views']:15.0f} %  "
              f"{v['max_wrist_speed_mps']:13.2f}  {side:>8s}  {100 * v['bone_length_cv']:5.1f} %"
              f"  {v['median_reprojection_px']:8.2f}")
    print(json.dumps({"people_found": pf.result.n_people, "primary": pf.primary}))


if __name__ == "__main__":
    main()
