"""Hand-model fit time and accuracy: synthetic kinematic and MANO hands, and real handmocap.

Synthetic MANO files are built by ``tests/mano_synth.py`` (no real MANO files exist here).

    .venv/bin/python benchmarks/bench_fit.py [--frames 300]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import mano_synth  # noqa: E402

from mvhand.core.data import Hands3D, Keypoints2D  # noqa: E402
from mvhand.core.synthetic import make_hand_motion  # noqa: E402
from mvhand.fit import FitConfig, run_fit  # noqa: E402
from mvhand.fit.mano import mano_forward  # noqa: E402
from mvhand.fit.mano_io import mano_model_from_dict  # noqa: E402

HANDMOCAP = REPO.parent / "shared" / "data" / "handmocap"


def as_hands3d(points: np.ndarray, units: str = "m") -> Hands3D:
    z = np.zeros(points.shape[:-1])
    return Hands3D(points, z, z.astype(int) + 3, z + 1.0, units)


def mano_motion(models, T: int, seed: int = 3) -> np.ndarray:
    """Two MANO hands opening and closing while moving: (T, 2, 21, 3) metres."""
    rng = np.random.default_rng(seed)
    t = np.arange(T) / 30
    out = np.zeros((T, 2, 21, 3))
    for h, side in enumerate(("left", "right")):
        m = models[side]
        rot = np.stack([2.8 + 0.3 * np.sin(t), 0.2 * np.cos(0.7 * t), 0.5 * np.sin(0.5 * t)], 1)
        grip = 1 + 3 * (0.5 + 0.5 * np.sin(2 * np.pi * 0.5 * t))
        pose = m.hands_mean * grip[:, None] + 0.1 * np.sin(t[:, None] + rng.uniform(0, 6, 45))
        trans = np.stack([0.1 * np.sin(0.3 * t) + (h - 0.5) * 0.4, 0.05 * np.cos(t), 1 + 0 * t], 1)
        out[:, h] = mano_forward(m, rng.normal(0, 1, 10), rot, pose, trans)[0]
    return out


def synthetic(T: int) -> None:
    models = {s: mano_model_from_dict(mano_synth.make_mano_dict(0, s), s)
              for s in ("left", "right")}
    kin = make_hand_motion(T, speed="slow", seed=1)
    man = mano_motion(models, T)
    print("| model | input | noise mm/axis | time s | mean error vs input mm | vs truth mm |")
    print("|---|---|---|---|---|---|")
    for noise in (0.0, 0.003):
        for name, X, cfg, kw in (
            ("kinematic", kin, FitConfig(model="kinematic"), {}),
            ("kinematic", man, FitConfig(model="kinematic"), {}),
            ("mano", man, FitConfig(model="mano", mano_dir="synthetic"), {"mano_models": models}),
        ):  # fmt: skip
            Xn = X + np.random.default_rng(0).normal(0, noise, X.shape)
            t0 = time.perf_counter()
            res = run_fit(as_hands3d(Xn), cfg, **kw)
            dt = time.perf_counter() - t0
            e_in = np.mean([np.nanmean(f.fit_error) for f in res.hands.values()]) * 1000
            e_tr = np.mean([np.nanmean(np.linalg.norm(f.joints3d - X[:, h], axis=-1))
                            for h, f in enumerate(res.hands.values())]) * 1000  # fmt: skip
            src = "MANO hands" if X is man else "procedural hands"
            print(f"| {name} | {src}, {T} frames x 2 | {noise * 1000:.0f} | {dt:.2f} | "
                  f"{e_in:.3f} | {e_tr:.3f} |")


def real() -> None:
    if not HANDMOCAP.is_dir():
        print(f"(real handmocap data not found at {HANDMOCAP}; skipped)")
        return
    from mvhand.io.calibration import load_calibration
    from mvhand.stages.reconstruct import ReconstructConfig, run_reconstruct

    rig = load_calibration(HANDMOCAP / "calibration.toml", "mm")
    raw = np.load(HANDMOCAP / "right_2d.npy").astype(float)
    raw[raw < 0] = np.nan
    C, T = raw.shape[:2]
    kp = np.full((C, T, 2, 21, 2), np.nan)
    kp[:, :, 1] = raw
    kp2 = Keypoints2D(kp, np.where(np.isfinite(kp).all(-1), 1.0, 0.0), rig.names, fps=30.0)
    rec = run_reconstruct(kp2, rig, ReconstructConfig())
    ref = np.load(HANDMOCAP / "right_3d_reference_0123.npy")
    print("\n| real handmocap (right hand, kinematic) | time s | fitted frames | "
          "mean (median) error vs input mm | vs study's 3D mm |\n|---|---|---|---|---|")
    for label, hd in (("triangulated", rec.triangulated), ("optimized", rec.hands3d)):
        t0 = time.perf_counter()
        f = run_fit(hd, FitConfig(model="kinematic")).hands["right"]
        dt = time.perf_counter() - t0
        e_ref = np.nanmean(np.linalg.norm(f.joints3d - ref, axis=-1))
        print(f"| {label} input, {T} frames | {dt:.2f} | {int(f.fitted.sum())} | "
              f"{np.nanmean(f.fit_error):.2f} ({np.nanmedian(f.fit_error):.2f}) | {e_ref:.2f} |")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=300)
    synthetic(ap.parse_args().frames)
    real()
