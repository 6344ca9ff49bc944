"""The 3D methods on real detections: leave-one-camera-out error, bone-length spread,
completeness and time, for handmocap (right hand) and both Pose2Sim recordings.

Leave one camera out: each method runs on the other cameras' 2D, its 3D is projected into the
held-out camera and compared with that camera's own detections (median and 90th percentile
over every joint the held-out camera detected and the method reconstructed, px). The held-out
camera's noise is independent of what the method saw, so this measures 3D accuracy on data
without ground truth. For handmocap also every 2- and 3-camera subset: the method runs on the
subset, the error is measured in the cameras left out.

Pose2Sim needs 2D first (about a minute each)::

    mvhand calib convert ../shared/data/pose2sim_single/Calib.qca.txt /tmp/p2s_single.toml
    mvhand run --calib /tmp/p2s_single.toml ../shared/data/pose2sim_single/videos \\
        --out /tmp/p2s_single            # and the same for pose2sim_multi

then::

    .venv/bin/python benchmarks/bench_real.py --pose2sim /tmp/p2s_single /tmp/p2s_multi
"""

from __future__ import annotations

import argparse
import itertools
import time
import warnings
from pathlib import Path

import numpy as np

from mvhand.bench.baselines import METHODS, MethodSkippedError
from mvhand.core.camera import Rig
from mvhand.core.data import Keypoints2D
from mvhand.core.metrics import reprojection_errors
from mvhand.core.skeleton import bone_lengths

DEFAULT_METHODS = ("dlt", "robust", "paper", "anipose_optim", "optimizer")
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def load_handmocap(folder: Path) -> tuple[Rig, Keypoints2D]:
    """The right hand of handmocap as (C, T, 2, 21, 2) keypoints (left hand empty), rig in mm."""
    from mvhand.io.calibration import load_calibration

    rig = load_calibration(folder / "calibration.toml", units="mm")
    raw = np.load(folder / "right_2d.npy").astype(float)
    raw[raw < 0] = np.nan
    kp = np.stack([np.full_like(raw, np.nan), raw], axis=2)
    return rig, Keypoints2D(kp, np.isfinite(kp).all(-1).astype(float), rig.names, fps=30.0)


def load_run(folder: Path) -> tuple[Rig, Keypoints2D]:
    """The 2D and calibration of an ``mvhand run`` output folder (the calibration the run
    used, else the converted one beside the folder, ``FOLDER.toml``)."""
    from mvhand.io.calibration import load_calibration
    from mvhand.io.keypoints import load_keypoints

    kp = load_keypoints(folder / "keypoints2d.npz")
    calib = folder / "calibration.toml"
    calib = calib if calib.exists() else folder.with_suffix(".toml")
    return load_calibration(calib).subset(kp.cameras), kp


def held_out_errors(method, rig: Rig, kp: Keypoints2D, fit: list[int]) -> np.ndarray:
    """Errors (px) in the cameras not in ``fit`` of the method run on the cameras ``fit``."""
    names = [rig.names[c] for c in fit]
    pts = method.run(rig.subset(names), kp.subset_cameras(names))
    rest = [c for c in range(len(rig)) if c not in fit]
    err = reprojection_errors(rig.subset([rig.names[c] for c in rest]), pts, kp.keypoints_px[rest])
    return err[np.isfinite(err)]


def spread_and_completeness(pts: np.ndarray, kp: Keypoints2D) -> tuple[float, float]:
    """Mean relative IQR of bone lengths over frames, and the fraction of joints
    reconstructed among those that at least two cameras detected."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        L = bone_lengths(pts)  # (T, H, 20)
        q75, q25, med = (np.nanpercentile(L, 75, 0), np.nanpercentile(L, 25, 0),
                         np.nanmedian(L, 0))  # fmt: skip
        spread = float(np.nanmean((q75 - q25) / med))
    seen = (np.isfinite(kp.keypoints_px).all(-1) & (kp.scores > 0)).sum(0) >= 2
    done = np.isfinite(pts).all(-1)
    return spread, float((done & seen).sum() / max(seen.sum(), 1))


def evaluate(name: str, rig: Rig, kp: Keypoints2D, methods: list[str], subsets: bool) -> None:
    C = len(rig)
    print(f"\n## {name}: {C} cameras, {kp.n_frames} frames")
    print(f"{'method':28s} {'LOCO med px':>11s} {'p90 px':>7s} {'n':>7s} {'bone IQR %':>10s} "
          f"{'complete %':>10s} {'time s':>7s}")  # fmt: skip
    for key in methods:
        m = METHODS[key]
        try:
            e = np.concatenate([held_out_errors(m, rig, kp, [o for o in range(C) if o != c])
                                for c in range(C)])  # fmt: skip
            t0 = time.perf_counter()
            pts = m.run(rig, kp)
            seconds = time.perf_counter() - t0
        except MethodSkippedError as exc:
            print(f"{m.label:28s} skipped: {exc}")
            continue
        spread, complete = spread_and_completeness(pts, kp)
        print(f"{m.label:28s} {np.median(e):11.3f} {np.percentile(e, 90):7.2f} {e.size:7d} "
              f"{100 * spread:10.2f} {100 * complete:10.1f} {seconds:7.2f}", flush=True)
    if not subsets:
        return
    for k in (2, 3):
        print(f"\n### {name}: every {k}-camera subset, error in the cameras left out")
        if k == C - 1:
            print("(the leave-one-camera-out figures above)")
            continue
        for key in methods:
            m = METHODS[key]
            e = np.concatenate([held_out_errors(m, rig, kp, list(s))
                                for s in itertools.combinations(range(C), k)])  # fmt: skip
            print(f"{m.label:28s} {np.median(e):11.3f} {np.percentile(e, 90):7.2f} "
                  f"{e.size:7d}", flush=True)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DATA, help="the shared data folder")
    ap.add_argument("--pose2sim", type=Path, nargs="*", default=[],
                    help="mvhand run output folders of the Pose2Sim recordings")
    ap.add_argument("--methods", default=",".join(DEFAULT_METHODS))
    ap.add_argument("--no-subsets", action="store_true", help="skip the handmocap subsets")
    args = ap.parse_args()
    warnings.simplefilter("ignore")  # aniposelib's numba compilation warnings
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    rig, kp = load_handmocap(args.data / "handmocap")
    evaluate("handmocap right hand", rig, kp, methods, not args.no_subsets)
    for folder in args.pose2sim:
        rig, kp = load_run(folder)
        evaluate(f"Pose2Sim {folder.name}", rig, kp, methods, False)


if __name__ == "__main__":
    main()
