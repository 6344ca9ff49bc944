"""Benchmark of the 3D core against aniposelib on one synthetic operating-room sequence.

Prints MPJPE (mm), completeness and wall time for: plain DLT, mvhand's robust triangulation,
the paper's 3D objective (L-BFGS-B), the full 3D stage (robust triangulation + optimizer),
and aniposelib's ``triangulate``, ``triangulate_ransac`` and ``optim_points`` on the same
detections, measured in the same run,
with ratios against mvhand's full stage. aniposelib gets the raw detections (as a user would
feed it) and, for a fairer second row, mvhand's swap-repaired 2D with outlier views removed.

``triangulate_ransac`` tries every camera subset per point (2^C), hours for 12 cameras and
300 frames: it runs on ``--ransac-frames`` frames and its time is extrapolated (marked "~").

    .venv/bin/python benchmarks/bench_3d.py --cameras 12 --frames 300 --speed slow
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from mvhand.bench.baselines import METHODS, camera_group
from mvhand.core.data import Keypoints2D
from mvhand.core.synthetic import DetectorNoise, make_hand_motion, make_or_rig, render_detections
from mvhand.core.triangulate import triangulate


def mpjpe_mm(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Mean error over reconstructed joints (mm) and the fraction reconstructed."""
    err = np.linalg.norm(pred - truth, axis=-1) * 1000
    ok = np.isfinite(err)
    return float(err[ok].mean()) if ok.any() else float("nan"), float(ok.mean())


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def repaired_input(rig, kp: Keypoints2D) -> Keypoints2D:
    """mvhand's swap-repaired 2D with the views its RANSAC rejected removed."""
    return triangulate(rig, kp).views.inlier_keypoints()


def ransac_subset(rig, kp: Keypoints2D, truth: np.ndarray, n_frames: int):
    """aniposelib's triangulate_ransac on the first ``n_frames`` frames: MPJPE, time per point."""
    group = camera_group(rig)
    sub = kp.frames(0, n_frames)
    pts = np.where((sub.scores >= 0.5)[..., None], sub.keypoints_px, np.nan)
    C = pts.shape[0]
    flat = pts.reshape(C, -1, 2)
    seen = np.isfinite(flat).all(-1).sum(0) >= 2
    out = np.full((flat.shape[1], 3), np.nan)
    t0 = time.perf_counter()
    out[seen] = group.triangulate_ransac(flat[:, seen], undistort=True, min_cams=2,
                                         progress=False)[0]  # fmt: skip
    per_point = (time.perf_counter() - t0) / max(int(seen.sum()), 1)
    err, cov = mpjpe_mm(out.reshape(truth[:n_frames].shape), truth[:n_frames])
    return err, cov, per_point


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cameras", type=int, default=12)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--speed", choices=["static", "slow", "fast"], default="slow")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ransac-frames", type=int, default=2)
    ap.add_argument("--skip-anipose-optim", action="store_true")
    args = ap.parse_args()
    warnings.simplefilter("ignore")  # aniposelib's numba compilation warnings

    rig = make_or_rig(args.cameras, seed=args.seed)
    truth = make_hand_motion(args.frames, speed=args.speed, seed=args.seed)
    kp = render_detections(rig, truth, DetectorNoise(), seed=args.seed)
    swapped = (kp.keypoints_px[..., 0, 0] - rig.project(truth)[..., 0, 0]) ** 2
    print(f"# {args.cameras} cameras, {args.frames} frames, two hands, speed {args.speed}, "
          f"seed {args.seed}; detector noise {DetectorNoise()}")
    print(f"# views with a swapped or missing wrist: {np.mean(~(swapped < 400)) * 100:.0f} %")
    rows = []
    for name in ("dlt", "robust", "paper", "optimizer", "anipose_dlt", "anipose_optim"):
        if name == "anipose_optim" and args.skip_anipose_optim:
            continue
        pred, sec = timed(METHODS[name].run, rig, kp)
        label = METHODS[name].label + (" (raw 2D)" if "anipose" in name else "")
        rows.append((label, *mpjpe_mm(pred, truth), sec, ""))
    fixed, sec_fix = timed(repaired_input, rig, kp)
    for name in ("anipose_dlt", "anipose_optim"):
        if name == "anipose_optim" and args.skip_anipose_optim:
            continue
        pred, sec = timed(METHODS[name].run, rig, fixed)
        rows.append((METHODS[name].label + " (mvhand-repaired 2D)", *mpjpe_mm(pred, truth),
                     sec + sec_fix, ""))  # fmt: skip
    err, cov, per_point = ransac_subset(rig, kp, truth, args.ransac_frames)
    n_points = int((np.isfinite(kp.keypoints_px[..., 0]).sum(0) >= 2).sum())
    rows.append((f"anipose ransac (raw 2D, first {args.ransac_frames} frames)", err, cov,
                 per_point * n_points, "~"))  # fmt: skip
    ours = next(r for r in rows if r[0].startswith("optimizer"))
    print("\n| method | MPJPE mm | reconstructed | time s | MPJPE / ours | time / ours |")
    print("|---|---|---|---|---|---|")
    for label, e, c, s, mark in rows:
        print(f"| {label} | {e:.2f} | {100 * c:.1f} % | {mark}{s:.2f} | {e / ours[1]:.2f} | "
              f"{mark}{s / ours[3]:.1f} |")
    anipose = [r for r in rows if r[0].startswith("anipose") and not r[4]]
    best = min(anipose, key=lambda r: r[1])
    optim = [r for r in anipose if "optim" in r[0]]
    print(f"\nfull stage: {ours[3]:.2f} s, MPJPE {ours[1]:.2f} mm; aniposelib's best MPJPE "
          f"{best[1]:.2f} mm ({best[0]}): ours is {100 * (1 - ours[1] / best[1]):.0f} % lower")
    if optim:
        fastest = min(optim, key=lambda r: r[3])
        print(f"optim_points: {fastest[3]:.1f} s = {fastest[3] / ours[3]:.0f}x our full stage")


if __name__ == "__main__":
    main()
