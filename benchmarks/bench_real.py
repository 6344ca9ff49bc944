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

    .venv/bin/python benchmarks/bench_real.py --pose2sim /tmp/p2s_single

Several people (Pose2Sim multi): ``mvhand run ... --set detect.max_people=2 --out /tmp/p2s_multi``
writes ``hands3d_people.npz`` with every camera's 2D rows and the person-hand each went to;
``--people-npz /tmp/p2s_multi/hands3d_people.npz`` evaluates every person-hand on its own
associated 2D (the association is the people stage's, the same for every method).

Besides the median over the joints each method reconstructed, the "common" column is the
median over the joints every method reconstructed (a method that fills gaps others leave is
otherwise scored on harder joints).

``--self-calibrate``: every method also on the calibration refined by mvhand's
self-calibration (:mod:`mvhand.calibrate.selfcal`), without letting the refinement see what
is scored: the extrinsics are refined on the first half of the frames (every camera's hands
and, for Pose2Sim, bodies, the points ``mvhand run`` uses) and the methods are scored
leave-one-camera-out on the second half, then the other way round; both halves' errors are
pooled. The given calibration is scored on the same frames. Pose2Sim single's bodies come from
the run's cache (``mvhand run`` keeps them since cache version 4).
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
    was given: :func:`given_calibration`)."""
    from mvhand.io.calibration import load_calibration
    from mvhand.io.keypoints import load_keypoints

    kp = load_keypoints(folder / "keypoints2d.npz")
    return load_calibration(given_calibration(folder)).subset(kp.cameras), kp


def given_calibration(folder: Path) -> Path:
    """The calibration a run was given (before any self-calibration): ``calibration_given.toml``
    if the run refined its cameras, else ``calibration.toml``, else ``FOLDER.toml``."""
    for calib in (folder / "calibration_given.toml", folder / "calibration.toml"):
        if calib.exists():
            return calib
    return folder.with_suffix(".toml")


def load_people_hands(path: Path) -> tuple[Rig, list[tuple[str, Keypoints2D]]]:
    """Every person-hand's associated 2D from ``hands3d_people.npz`` (and the calibration of
    its run folder): ``(label, Keypoints2D (C, T, 2, 21, 2))`` with only that hand filled."""
    from mvhand.io.calibration import load_calibration
    from mvhand.io.people import load_people

    people = load_people(path)
    det, res = people.detections, people.result
    if det is None:
        raise SystemExit(f"{path}: written before the 2D rows were stored; rerun mvhand run")
    rig = load_calibration(given_calibration(path.parent)).subset(det.cameras)
    out = []
    for p, pid in enumerate(res.person_ids):
        for side, hand in enumerate(("left", "right")):
            kp = np.full((len(det.cameras), det.n_frames, 2, 21, 2), np.nan)
            sc = np.zeros(kp.shape[:-1])
            rows, slots = np.nonzero((res.det_hand_person == p) & (res.det_side == side))
            kp[det.camera[rows], det.frame[rows], side] = det.hands_px[rows, slots]
            sc[det.camera[rows], det.frame[rows], side] = det.hands_scores[rows, slots]
            if (np.isfinite(kp).all(-1) & (sc > 0)).any(axis=(1, 2, 3)).sum() >= 2:
                out.append((f"person {int(pid)} {hand}",
                            Keypoints2D(kp, sc, det.cameras, fps=det.fps)))  # fmt: skip
    return rig, out


def scene_points(rig: Rig, kp: Keypoints2D, body: tuple | None = None, cfg=None):
    """The self-calibration's points: the hands (after the left/right repair) and, when
    given, bodies ``(px (C, T, 17, 2), scores (C, T, 17))``, as ``cfg.sources`` says: what
    ``mvhand run`` uses."""
    from mvhand.calibrate.selfcal import SelfCalibrationConfig
    from mvhand.pipeline.selfcal import single_person_points
    from mvhand.stages.reconstruct import ReconstructConfig

    cfg = cfg or SelfCalibrationConfig()
    tri = ReconstructConfig().triangulation
    return single_person_points(rig, kp, *(body or (None, None)), cfg, tri)


def load_run_bodies(folder: Path, cameras: tuple[str, ...]) -> tuple | None:
    """Bodies ``(C, T, 17, 2)``, scores of a run folder's cache (None: an older cache)."""
    px, sc = [], []
    for cam in cameras:
        path = folder / "cache" / f"{cam}.npz"
        if not path.is_file():
            return None
        with np.load(path) as z:
            if "body_px" not in z.files:
                return None
            px.append(z["body_px"])
            sc.append(z["body_scores"])
    return np.stack(px), np.stack(sc)


def evaluate_self_calibrated(name: str, rig: Rig, kps: list[tuple[str, Keypoints2D]],
                             points, methods: list[str], cfg) -> None:  # fmt: skip
    """Every method on the given and on the self-calibrated rig, refined on one half of the
    frames and scored on the other (both ways, pooled); ``points``: ScenePoints of all
    frames (every hand of ``kps`` is scored)."""
    from mvhand.calibrate.selfcal import refine_rig
    from mvhand.stages.reconstruct import ReconstructConfig

    if points.points_px.shape[1] == 0:
        print(f"\n## {name}: no points for the self-calibration ({cfg.sources})")
        return
    T = kps[0][1].n_frames
    cut = T // 2
    errs: dict = {}
    for fit, test in (((0, cut), (cut, T)), ((cut, T), (0, cut))):
        keep = np.flatnonzero((points.frame >= fit[0]) & (points.frame < fit[1]))
        refined, info = refine_rig(rig, points.take(keep), cfg, ReconstructConfig().triangulation)
        print(f"  refined on frames {fit[0]}-{fit[1] - 1}: {info['points']} points, rotations "
              f"{np.round(info['rotation_deg'], 2).tolist()} deg, median error "
              f"{info['median_error_px'][0]:.2f} -> {info['median_error_px'][1]:.2f} px")
        for label, kp in kps:
            part = kp.frames(*test)
            for key in methods:
                for which, r in (("given", rig), ("self-calibrated", refined)):
                    try:
                        e = np.stack([held_out_errors(METHODS[key], r, part,
                                                      [o for o in range(len(r)) if o != c],
                                                      True)[0] for c in range(len(r))])
                    except MethodSkippedError:
                        continue
                    errs.setdefault((label, key, which), []).append(e[np.isfinite(e)])
    if len(kps) > 1:  # every scored hand's errors together
        for key in methods:
            for which in ("given", "self-calibrated"):
                parts = [e for (lab, k, w), v in errs.items() if k == key and w == which
                         for e in v]  # fmt: skip
                if parts:
                    errs[("all hands pooled", key, which)] = parts
        kps = [*kps, ("all hands pooled", None)]
    for label, _ in kps:
        print(f"\n## {name} {label}: leave-one-camera-out on frames the refinement did not see")
        base = errs.get((label, "robust", "given"))
        ref = np.median(np.concatenate(base)) if base else np.nan
        print(f"{'method':28s} {'given px':>9s} {'p90':>7s} {'self-cal px':>11s} {'p90':>7s} "
              f"{'below robust on given':>22s}")  # fmt: skip
        for key in methods:
            if (label, key, "given") not in errs:
                continue
            g = np.concatenate(errs[(label, key, "given")])
            r = np.concatenate(errs[(label, key, "self-calibrated")])
            print(f"{METHODS[key].label:28s} {np.median(g):9.3f} {np.percentile(g, 90):7.2f} "
                  f"{np.median(r):11.3f} {np.percentile(r, 90):7.2f} "
                  f"{100 * (1 - np.median(r) / ref):+21.1f}%", flush=True)  # fmt: skip


def held_out_errors(method, rig: Rig, kp: Keypoints2D, fit: list[int],
                    keep_shape: bool = False) -> np.ndarray:  # fmt: skip
    """Errors (px) in the cameras not in ``fit`` of the method run on the cameras ``fit``
    (finite ones, flattened; with ``keep_shape`` the whole (C - len(fit), T, H, J) array, NaN
    or inf where a joint was not detected or not reconstructed)."""
    names = [rig.names[c] for c in fit]
    pts = method.run(rig.subset(names), kp.subset_cameras(names))
    rest = [c for c in range(len(rig)) if c not in fit]
    err = reprojection_errors(rig.subset([rig.names[c] for c in rest]), pts, kp.keypoints_px[rest])
    return err if keep_shape else err[np.isfinite(err)]


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
    rows, errs = [], {}
    for key in methods:
        m = METHODS[key]
        try:
            e = np.stack([held_out_errors(m, rig, kp, [o for o in range(C) if o != c], True)[0]
                          for c in range(C)])  # fmt: skip
            t0 = time.perf_counter()
            pts = m.run(rig, kp)
            seconds = time.perf_counter() - t0
        except MethodSkippedError as exc:
            print(f"{m.label:28s} skipped: {exc}")
            continue
        errs[key] = e
        rows.append((key, m.label, seconds, *spread_and_completeness(pts, kp)))
    common = np.logical_and.reduce([np.isfinite(e) for e in errs.values()]) if errs else None
    print(f"{'method':28s} {'LOCO med px':>11s} {'p90 px':>7s} {'n':>7s} {'common':>7s} "
          f"{'bone IQR %':>10s} {'complete %':>10s} {'time s':>7s}")  # fmt: skip
    for key, label, seconds, spread, complete in rows:
        e = errs[key][np.isfinite(errs[key])]
        if e.size == 0:
            print(f"{label:28s} nothing reconstructed in a held-out camera")
            continue
        med_common = np.median(errs[key][common]) if common.any() else np.nan
        print(f"{label:28s} {np.median(e):11.3f} {np.percentile(e, 90):7.2f} {e.size:7d} "
              f"{med_common:7.3f} {100 * spread:10.2f} {100 * complete:10.1f} {seconds:7.2f}",
              flush=True)  # fmt: skip
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
    ap.add_argument("--people-npz", type=Path, nargs="*", default=[],
                    help="hands3d_people.npz files (mvhand run with detect.max_people > 1): "
                    "every person-hand on its associated 2D")  # fmt: skip
    ap.add_argument("--no-handmocap", action="store_true", help="skip handmocap")
    ap.add_argument("--methods", default=",".join(DEFAULT_METHODS))
    ap.add_argument("--no-subsets", action="store_true", help="skip the handmocap subsets")
    ap.add_argument("--self-calibrate", action="store_true",
                    help="instead: every method on the given and on the self-calibrated "
                    "calibration, refined on the other half of the frames")  # fmt: skip
    ap.add_argument("--selfcal", action="append", default=[], metavar="KEY=VALUE",
                    help="a self_calibration setting for --self-calibrate, e.g. sources=body")
    args = ap.parse_args()
    warnings.simplefilter("ignore")  # aniposelib's numba compilation warnings
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if args.self_calibrate:
        return main_self_calibrated(args, methods)
    if not args.no_handmocap:
        rig, kp = load_handmocap(args.data / "handmocap")
        evaluate("handmocap right hand", rig, kp, methods, not args.no_subsets)
    for folder in args.pose2sim:
        rig, kp = load_run(folder)
        evaluate(f"Pose2Sim {folder.name}", rig, kp, methods, False)
    for path in args.people_npz:
        rig, hands = load_people_hands(path)
        for label, kp in hands:
            evaluate(f"{path.parent.name} {label}", rig, kp, methods, False)


def main_self_calibrated(args, methods: list[str]) -> None:
    """``--self-calibrate``: the same recordings, each method on both calibrations."""
    from mvhand.calibrate.selfcal import SelfCalibrationConfig
    from mvhand.config import load_config
    from mvhand.io.people import load_people
    from mvhand.pipeline.selfcal import people_points

    cfg = load_config(SelfCalibrationConfig, None, args.selfcal)
    print(f"self-calibration: {cfg}")

    if not args.no_handmocap:
        rig, kp = load_handmocap(args.data / "handmocap")
        evaluate_self_calibrated("handmocap", rig, [("right hand", kp)],
                                 scene_points(rig, kp, None, cfg), methods, cfg)  # fmt: skip
    for folder in args.pose2sim:
        rig, kp = load_run(folder)
        body = load_run_bodies(folder, kp.cameras)
        if body is None:
            print(f"{folder}: no bodies in the cache (rerun mvhand run): hands only")
        evaluate_self_calibrated(f"Pose2Sim {folder.name}", rig, [("both hands", kp)],
                                 scene_points(rig, kp, body, cfg), methods, cfg)  # fmt: skip
    for path in args.people_npz:
        rig, hands = load_people_hands(path)
        pf = load_people(path)
        pts = people_points(pf.detections, pf.result, cfg)
        evaluate_self_calibrated(path.parent.name, rig, hands, pts, methods, cfg)


if __name__ == "__main__":
    main()
