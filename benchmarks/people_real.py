"""Several people on real video: every person per camera and frame -> association -> 3D.

The video pipeline keeps one person per camera; this script instead runs the MediaPipe person
detector and body model on *every* detected person of every frame (up to ``--max-people``),
the hand model on each body's two hand crops, and feeds all of it to
``mvhand.stages.people.reconstruct_people``. It prints what the issue asks for on
``../shared/data/pose2sim_multi``: per output hand the share of frames in which it reprojects
onto the same person's body (its wrist within a hand length of that person's 2D body wrist)
in at least two views, the largest wrist speed, left/right against the arm over every track,
and each person's bone-length spread; and writes ``--out`` (npz + report) for a look.

    .venv/bin/mvhand calib convert ../shared/data/pose2sim_multi/Calib.qca.txt /tmp/multi.toml
    .venv/bin/python benchmarks/people_real.py --calib /tmp/multi.toml \\
        --videos ../shared/data/pose2sim_multi/videos --out /tmp/people_multi
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from mvhand.backends.registry import BackendConfig, make_backend
from mvhand.config import load_config
from mvhand.core.crops import hand_crops_from_body
from mvhand.core.people import SOURCES, Detections2D
from mvhand.core.skeleton import bone_lengths
from mvhand.io.calib_convert import load_rig
from mvhand.io.video import iter_frames
from mvhand.stages.people import PeopleConfig, reconstruct_people

#: MediaPipe pose-33 indices of the COCO-17 joints.
POSE33_TO_COCO17 = np.array([0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28])


def detect_camera(backend, video: Path, frames: int | None, max_people: int) -> list[tuple]:
    """Rows (frame, body (17, 2), body scores, hands (2, 21, 2), hand scores) of one video."""
    rows = []
    for t, image in iter_frames(video, 0, frames):
        if image is None:
            continue
        for det in backend.person.detect(image)[:max_people]:
            pose = backend.body.estimate(image, det)
            if pose is None:
                continue
            kp = np.asarray(pose.keypoints_px, float)[POSE33_TO_COCO17]
            sc = np.nan_to_num(np.asarray(pose.scores, float))[POSE33_TO_COCO17]
            hands = np.full((2, 21, 2), np.nan)
            hsc = np.zeros((2, 21))
            for h in (0, 1):
                crop = hand_crops_from_body(pose, h)
                if crop is None:
                    continue
                out = backend.hand.estimate(image, crop.crop)
                if out.presence >= 0.5:
                    hands[h], hsc[h] = out.keypoints_px, out.scores
            rows.append((t, kp, sc, hands, hsc))
    return rows


def to_table(per_cam: dict[str, list[tuple]], names: tuple[str, ...], n_frames: int,
             fps: float) -> Detections2D:  # fmt: skip
    cam, frame, body, bsc, hands, hsc = [], [], [], [], [], []
    for c, name in enumerate(names):
        for t, kp, sc, hk, hs in per_cam[name]:
            cam.append(c), frame.append(t), body.append(kp), bsc.append(sc)
            hands.append(hk), hsc.append(hs)
    src = np.full(len(cam), SOURCES.index("body"))
    return Detections2D(np.array(cam), np.array(frame), np.array(body), np.array(bsc),
                        np.array(hands), np.array(hsc), src, names, n_frames, fps)  # fmt: skip


def figures(res, det: Detections2D, rig, fps: float) -> dict:
    """The issue's checks per output hand (no ground truth)."""
    out = {}
    to_m = {"m": 1.0, "cm": 0.01, "mm": 0.001}[res.units]
    proj = rig.project(res.hands3d[:, :, :, 0])  # (C, T, P, 2, 2) wrists
    for p in range(res.n_people):
        for s, side in enumerate(("left", "right")):
            valid = np.isfinite(res.hands3d[:, p, s, 0]).all(-1)
            if valid.sum() == 0:
                continue
            on_body = np.zeros(det.n_frames, dtype=int)
            rows = np.flatnonzero(res.det_person == p)
            for n in rows:  # the person's own body wrist in that view
                t, c = det.frame[n], det.camera[n]
                bw = det.body_px[n, 9 + s]
                hand_px = np.nanmax(np.ptp(det.hands_px[n, s], axis=0)) if \
                    np.isfinite(det.hands_px[n, s]).any() else 60.0  # fmt: skip
                if valid[t] and np.isfinite(bw).all() and \
                        np.linalg.norm(proj[c, t, p, s] - bw) < max(hand_px, 30.0):
                    on_body[t] += 1
            w = res.hands3d[:, p, s, 0]
            tv = np.flatnonzero(valid)
            speed = np.linalg.norm(np.diff(w[tv], axis=0), axis=-1) * to_m * fps / np.diff(tv)
            arm = res.body3d[:, p, [9, 10]]  # which body wrist is the hand nearer?
            d = np.linalg.norm(arm - w[:, None], axis=-1)
            ok = np.isfinite(d).all(-1) & valid
            lengths = bone_lengths(res.hands3d[:, p, s])[valid]
            cv = np.nanmedian(np.nanstd(lengths, 0) / np.nanmedian(lengths, 0))
            out[f"p{res.person_ids[p]}_{side}"] = {
                "frames": int(valid.sum()),
                "on_own_body_2plus_views": float((on_body[valid] >= 2).mean()),
                "max_wrist_speed_mps": float(speed.max()) if len(speed) else 0.0,
                "side_matches_arm": float((d[ok].argmin(-1) == s).mean()) if ok.any() else None,
                "bone_length_cv": float(cv),
                "median_reprojection_px": float(np.nanmedian(
                    res.hands_reprojection_error_px[:, p, s][valid])),
            }  # fmt: skip
    return out


_COLORS = ((230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180),
           (70, 240, 240))


def overlay(res, rig, videos: Path, frames: list[int], out: Path) -> None:
    """PNG per frame: every camera side by side with each person's reprojected 3D hands and
    arms, one colour per person, ``P<id> L/R`` at each wrist."""
    import cv2

    for t in frames:
        tiles = []
        for c, name in enumerate(rig.names):
            video = sorted(videos.glob(f"{name}*"))[0]
            image = next(iter_frames(video, t, t + 1))[1]
            img = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
            for p in range(res.n_people):
                col = _COLORS[p % len(_COLORS)][::-1]
                arm = rig[c].project(res.body3d[t, p, [5, 7, 9, 6, 8, 10]])
                for a, b in ((0, 1), (1, 2), (3, 4), (4, 5), (0, 3)):
                    if np.isfinite(arm[[a, b]]).all():
                        cv2.line(img, tuple(map(int, arm[a])), tuple(map(int, arm[b])), col, 3)
                for s, side in enumerate("LR"):
                    pts = rig[c].project(res.hands3d[t, p, s])
                    for q in pts[np.isfinite(pts).all(-1)]:
                        cv2.circle(img, tuple(map(int, q)), 3, col, -1)
                    if np.isfinite(pts[0]).all():
                        cv2.putText(img, f"P{res.person_ids[p]} {side}",
                                    tuple(map(int, pts[0] + [8, -8])),
                                    cv2.FONT_HERSHEY_SIMPLEX, 1.0, col, 2)  # fmt: skip
            tiles.append(cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2)))
        cv2.imwrite(str(out / f"overlay_{t:04d}.png"), np.concatenate(tiles, axis=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calib", required=True, type=Path)
    ap.add_argument("--videos", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--frames", type=int, default=None)
    ap.add_argument("--max-people", type=int, default=4)
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--overlay-frames", default="", help="e.g. 10,50,90: PNG overlays")
    ap.add_argument("--optimize", action="store_true", help="the optimizer per hand too")
    ap.add_argument("--set", dest="overrides", action="append", default=[],
                    metavar="KEY=VALUE", help="a people setting, e.g. triangulation.robust=false")
    args = ap.parse_args()
    rig = load_rig(args.calib)
    backend = make_backend(BackendConfig(max_people=args.max_people, person_threshold=0.3))
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    cache = args.out / "detections2d.npz"
    if cache.is_file():  # the 2D of an earlier run of this script
        with np.load(cache) as z:
            det = Detections2D(*(z[k] for k in ("camera", "frame", "body_px", "body_scores",
                                                "hands_px", "hands_scores", "source")),
                               rig.names, int(z["n_frames"]), args.fps)  # fmt: skip
    else:
        per_cam = {}
        for name in rig.names:
            video = sorted(args.videos.glob(f"{name}*"))[0]
            per_cam[name] = detect_camera(backend, video, args.frames, args.max_people)
            print(f"{name}: {len(per_cam[name])} person detections")
        n_frames = 1 + max(r[0] for rows in per_cam.values() for r in rows)
        det = to_table(per_cam, rig.names, n_frames, args.fps)
        args.out.mkdir(parents=True, exist_ok=True)
        np.savez(cache, camera=det.camera, frame=det.frame, body_px=det.body_px,
                 body_scores=det.body_scores, hands_px=det.hands_px,
                 hands_scores=det.hands_scores, source=det.source, n_frames=det.n_frames)
    t1 = time.perf_counter()
    cfg = load_config(PeopleConfig, None, [f"optimize={str(args.optimize).lower()}",
                                           *args.overrides])  # fmt: skip
    res = reconstruct_people(rig, det, cfg)
    t2 = time.perf_counter()
    rep = res.report
    print(f"2D: {t1 - t0:.1f} s; association + 3D: {t2 - t1:.2f} s "
          f"({rep['timings_s']['association']:.2f} s association)")
    print(f"people found: {rep['people_found']}; suspected switches: "
          f"{len(rep['suspected_identity_switches'])}; ambiguous frames: "
          f"{len(rep['ambiguous_frames'])}; warnings: {rep['warnings']}")  # fmt: skip
    for p in rep["people"]:
        print(f"  person {p['id']}: frames {p['frames']}, hands {p['hand_frames']}, "
              f"bone cv {p['bone_length_cv']}")
    figs = figures(res, det, rig, args.fps)
    for name, f in figs.items():
        print(f"  {name}: " + ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                                        for k, v in f.items()))  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    np.savez(args.out / "hands3d_people.npz", hands3d=res.hands3d, body3d=res.body3d,
             person_ids=res.person_ids, det_camera=det.camera, det_frame=det.frame,
             det_body_px=det.body_px, det_hands_px=det.hands_px, det_person=res.det_person,
             det_hand_person=res.det_hand_person, det_side=res.det_side)  # fmt: skip
    (args.out / "report_people.json").write_text(json.dumps({**rep, "figures": figs}, indent=2))
    if args.overlay_frames:
        overlay(res, rig, args.videos, [int(f) for f in args.overlay_frames.split(",")],
                args.out)  # fmt: skip


if __name__ == "__main__":
    main()
