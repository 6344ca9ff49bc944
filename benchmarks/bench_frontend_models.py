"""Per-stage timing of the 2D front-end (mediapipe backend), and the alternatives it replaced.

Prints milliseconds per camera-frame for each stage (person detection, body pose, hand crops,
hand keypoints for two hands), on messi5.jpg and on Pose2Sim portrait frames (1080x1920), and
compares with MediaPipe's legacy ``solutions`` API run on the same inputs (the reference peer:
``Pose`` on the frame, ``Hands`` on our hand crops). Also times the palm detector and reports
hand keypoint accuracy on the annotated crops. Single-threaded models; figures are wall-clock
medians and are noisy on a shared machine.

Usage: ``.venv/bin/python benchmarks/bench_frontend_models.py [--frames 20]``
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from mvhand.backends.mediapipe_backend import TFLiteModel, model_path, warp_crop  # noqa: E402
from mvhand.backends.registry import BackendConfig, make_backend  # noqa: E402
from mvhand.core import crops  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


def _ms(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, (time.perf_counter() - t) * 1e3


def frontend_frame(backend, img: np.ndarray) -> dict[str, float]:
    """Run the whole 2D front-end on one frame; per-stage milliseconds and the results."""
    t = {}
    people, t["person"] = _ms(backend.person.detect, img)
    pose, t["body"] = _ms(backend.body.estimate, img, people[0] if people else None)
    t["crops"], t["hands"], found = 0.0, 0.0, []
    if pose is not None:
        for hand in (0, 1):
            body_hand, dt = _ms(crops.hand_crops_from_body, pose, hand)
            t["crops"] += dt
            if body_hand is not None:
                keypoints, dt = _ms(backend.hand.estimate, img, body_hand.crop)
                t["hands"] += dt
                found.append((body_hand, keypoints))
    t["total"] = sum(t.values())
    t["_found"] = found  # type: ignore[assignment]
    return t


def pose2sim_frames(n: int) -> list[np.ndarray]:
    frames = []
    for cam in ("cam01", "cam02", "cam03", "cam04"):
        cap = cv2.VideoCapture(str(DATA / "pose2sim_single" / "videos" / f"{cam}.mp4"))
        step = max(1, 100 // max(1, n // 4))
        for i in range(100):
            ok, frame = cap.read()
            if not ok:
                break
            if i % step == 0:
                frames.append(np.ascontiguousarray(frame[:, :, ::-1]))
        cap.release()
    return frames[:n]


def report_frontend(backend, name: str, images: list[np.ndarray]) -> list:
    rows, found = [], []
    for img in images:
        frontend_frame(backend, img)  # warm-up on the same size
        row = frontend_frame(backend, img)
        found.append(row.pop("_found"))
        rows.append(row)
    med = {k: float(np.median([r[k] for r in rows])) for k in rows[0]}
    hands = [k for f in found for _, k in f]
    seen = np.mean([k.presence > 0.5 for k in hands]) if hands else 0.0
    print(f"{name}: {len(images)} frames {images[0].shape[1]}x{images[0].shape[0]}  "
          + "  ".join(f"{k} {v:.1f}" for k, v in med.items()) + " ms (median)  "
          f"hands with presence>0.5: {seen:.0%} of {len(hands)}")  # fmt: skip
    return found


def report_models(threads: int) -> None:
    for key, size in (("person", 224), ("body", 256), ("hand", 224), ("palm", 192)):
        model = TFLiteModel(model_path(key), threads)
        x = np.random.default_rng(0).random((size, size, 3), dtype=np.float32)
        model(x)
        times = [_ms(model, x)[1] for _ in range(20)]
        print(f"model {key:6s} {size}x{size}: {np.median(times):.1f} ms per call")


def report_legacy(images: list[np.ndarray], found: list) -> None:
    """MediaPipe's legacy solutions API on the same inputs (the peer)."""
    import mediapipe as mp

    with mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1) as pose:
        pose.process(images[0])
        times, hits = [], 0
        for img in images:
            res, dt = _ms(pose.process, img)
            times.append(dt)
            hits += res.pose_landmarks is not None
    print(f"legacy mp.solutions.Pose (detector + landmarks): {np.median(times):.1f} ms, "
          f"pose found in {hits}/{len(images)} frames")
    patches = [warp_crop(img, bh.crop, 224) for img, f in zip(images, found, strict=True)
               for bh, _ in f]
    with mp.solutions.hands.Hands(static_image_mode=True, max_num_hands=1) as hands:
        times, hits = [], 0
        for p in patches:
            res, dt = _ms(hands.process, (p * 255).astype(np.uint8))
            times.append(dt)
            hits += res.multi_hand_landmarks is not None
    ours = sum(k.presence > 0.5 for f in found for _, k in f)
    print(f"legacy mp.solutions.Hands on our {len(patches)} body-derived crops: "
          f"{np.median(times):.1f} ms per crop, hand found in {hits}; ours (presence>0.5): {ours}")


def report_accuracy(backend) -> None:
    path = REPO / "tests" / "test_backends_mediapipe.py"  # its annotation loaders
    spec = importlib.util.spec_from_file_location("t", path)
    tests = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tests)  # type: ignore[union-attr]
    for name, loader in (("freihand", tests._freihand), ("interhand2.6m", tests._interhand)):
        samples = loader(DATA)
        mje, pck = tests._accuracy(backend, samples)
        print(f"accuracy {name}: {len(samples)} hands, MJE {mje:.2f} px, PCK@0.2 {pck:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20, help="Pose2Sim frames to time")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-legacy", action="store_true", help="skip the mp.solutions peer")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    backend = make_backend(BackendConfig(num_threads=args.threads))
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores (shared machine)")
    report_models(args.threads)
    messi = np.ascontiguousarray(cv2.imread(str(DATA / "images" / "messi5.jpg"))[:, :, ::-1])
    report_frontend(backend, "messi5", [messi] * 5)
    frames = pose2sim_frames(args.frames)
    found = report_frontend(backend, "pose2sim", frames)
    report_accuracy(backend)
    if not args.no_legacy:
        report_legacy(frames, found)


if __name__ == "__main__":
    main()
