"""The optimizer's step solver: time, Levenberg-Marquardt and conjugate-gradient iterations of
the 3D stage with the switching step solver and with the joint-trajectory preconditioner alone
(the solver before the switch existed), on Pose2Sim single (noisy views: bones dominate) and the
synthetic 12-camera sequence (clean views).

    .venv/bin/python benchmarks/bench_solver.py --pose2sim /tmp/p2s_single

(``/tmp/p2s_single`` from ``mvhand run``, see benchmarks/bench_real.py.)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from mvhand.core.optimize import OptimizerConfig, optimize, solver
from mvhand.core.synthetic import DetectorNoise, make_hand_motion, make_or_rig, render_detections
from mvhand.core.triangulate import triangulate


def run(name: str, rig, kp, fps: float, cfg: OptimizerConfig, truth=None) -> None:
    tri = triangulate(rig, kp)
    for label, switch in (("switching", solver.SWITCH_AFTER), ("joint band only", 10**9)):
        keep = solver.SWITCH_AFTER
        solver.SWITCH_AFTER = switch
        try:
            t0 = time.perf_counter()
            res = optimize(rig, tri, cfg, fps=fps)
            seconds = time.perf_counter() - t0
        finally:
            solver.SWITCH_AFTER = keep
        hands = [h for h in res.info["hands"] if h.get("optimized")]
        lm = sum(w["iterations"] for h in hands for w in h["windows"])
        cg = sum(w["cg_iterations"] for h in hands for w in h["windows"])
        fit = sum(w["seconds"] for h in hands for w in h["windows"])
        err = ""
        if truth is not None:
            e = np.linalg.norm(res.keypoints3d - truth, axis=-1) * 1000
            err = f" | MPJPE {np.nanmean(e):.3f} mm"
        print(f"{name:32s} {label:16s} stage {seconds:6.2f} s (main fits {fit:5.2f} s) | "
              f"main fits: LM {lm:3d}, CG {cg:5d}{err}", flush=True)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pose2sim", type=Path, help="mvhand run output folder of pose2sim_single")
    ap.add_argument("--frames", type=int, default=300, help="synthetic frames")
    args = ap.parse_args()
    for sel in ("cross_validation", "fixed"):
        cfg = OptimizerConfig(weight_selection=sel)
        if args.pose2sim:
            import sys

            sys.path.insert(0, str(Path(__file__).parent))
            from bench_real import load_run

            rig, kp = load_run(args.pose2sim)
            run(f"Pose2Sim single, {sel}", rig, kp, kp.fps or 30.0, cfg)
        rig = make_or_rig(12, seed=0)
        truth = make_hand_motion(args.frames, speed="slow", seed=0)
        kp = render_detections(rig, truth, DetectorNoise(), seed=0)
        run(f"synthetic 12 x {args.frames}, {sel}", rig, kp, 30.0, cfg, truth)


if __name__ == "__main__":
    main()
