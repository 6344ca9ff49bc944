"""Self-calibration against exact truth: the rendered benchmark with its calibration perturbed.

Every camera of a rendered sequence's calibration is turned by about ``--deg`` degrees and moved
by about ``--move-m`` metres (seeded, random directions); the 2D is the one ``mvhand run``
detected on the rendered videos (with the true cameras). Self-calibration (with its check)
then runs on that 2D and the perturbed cameras, and the 3D stage runs with the exact, the
perturbed and the self-calibrated cameras. Printed: MPJPE against ``gt3d.npz`` as is and
after the best similarity (the shape: no method can recover the world frame a wrong
calibration puts the scene in), and whether the check let the refinement through. With
``--deg 0`` the exact cameras are given, and the refinement the check refused is also scored
forced.

    mvhand bench render --out RB --level L0,L1,L2 --frames 150
    mvhand bench detect --dataset RB --runs RR
    .venv/bin/python benchmarks/bench_selfcal.py --dataset RB --runs RR --deg 0.5
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_real import load_run, scene_points  # noqa: E402

from mvhand.calibrate.bundle import similarity_align  # noqa: E402
from mvhand.calibrate.selfcal import refine_rig, self_calibrate  # noqa: E402
from mvhand.core.camera import UNIT_SCALE_M, Camera, Rig  # noqa: E402
from mvhand.core.triangulate import TriangulationConfig  # noqa: E402
from mvhand.stages.reconstruct import ReconstructConfig, run_reconstruct  # noqa: E402


def perturbed(rig: Rig, deg: float, move_m: float, seed: int) -> Rig:
    """Every camera turned about a random axis and moved in a random direction; ``deg`` and
    ``move_m`` are the RMS sizes."""
    rng = np.random.default_rng(seed)
    move = move_m / UNIT_SCALE_M[rig.units]
    cams = []
    for c in rig.cameras:
        R = Rotation.from_rotvec(rng.normal(0, np.deg2rad(deg) / np.sqrt(3), 3)).as_matrix()
        R = R @ c.R_cam_world
        centre = c.center_world + rng.normal(0, move / np.sqrt(3), 3)
        cams.append(Camera(c.name, c.size_px, c.K, c.dist, R, -R @ centre, c.model))
    return Rig(tuple(cams), rig.units)


def errors_mm(X: np.ndarray, truth: np.ndarray, mm: float) -> tuple[float, float, float]:
    """MPJPE as is, after the best similarity, and the share of joints reconstructed."""
    ok = np.isfinite(X).all(-1)
    s, R, t = similarity_align(X[ok], truth[ok])
    shape = np.linalg.norm(s * X[ok] @ R.T + t - truth[ok], axis=-1) * mm
    return float(np.linalg.norm(X[ok] - truth[ok], axis=-1).mean() * mm), float(shape.mean()), \
        float(ok.mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", type=Path, required=True, help="the rendered benchmark")
    ap.add_argument("--runs", type=Path, required=True, help="mvhand bench detect's runs")
    ap.add_argument("--levels", default="L0,L1,L2")
    ap.add_argument("--deg", type=float, default=0.5, help="RMS rotation of each camera")
    ap.add_argument("--move-m", type=float, default=0.01, help="RMS move of each camera (m)")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    tri = TriangulationConfig(swap_repair=False)
    for level in args.levels.split(","):
        seq = next(p for p in sorted(args.dataset.iterdir()) if p.name.startswith(level + "_"))
        rig, kp = load_run(args.runs / seq.name)
        gt = np.load(seq / "gt3d.npz")
        truth = gt["keypoints3d"] * UNIT_SCALE_M[str(gt["units"])] / UNIT_SCALE_M[rig.units]
        mm = UNIT_SCALE_M[rig.units] * 1000
        given = perturbed(rig, args.deg, args.move_m, args.seed) if args.deg > 0 else rig
        points = scene_points(given, kp)
        res = self_calibrate(given, points, tri_cfg=tri)
        check = res.info.get("check", {}).get("held_out_median_px")
        print(f"\n## {seq.name}: cameras off by {args.deg} deg / {args.move_m} m (RMS); "
              f"check {check} px -> {'used' if res.applied else 'refused'}", flush=True)
        rigs = [("exact cameras", rig)]
        if args.deg > 0:
            rigs.append(("perturbed (given)", given))
        rigs.append(("self-calibrated" if res.applied else "after the check (given)", res.rig))
        if not res.applied:
            rigs.append(("forced refinement", refine_rig(given, points, tri_cfg=tri)[0]))
        print(f"{'cameras':26s} {'MPJPE mm':>9s} {'shape mm':>9s} {'joints':>7s}")
        for name, r in rigs:
            X = run_reconstruct(kp, r, ReconstructConfig()).hands3d.keypoints3d
            mpjpe, shape, share = errors_mm(X, truth, mm)
            print(f"{name:26s} {mpjpe:9.2f} {shape:9.2f} {100 * share:6.1f}%", flush=True)


if __name__ == "__main__":
    main()
