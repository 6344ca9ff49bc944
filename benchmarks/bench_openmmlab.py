"""Time of the openmmlab backend's models against the mediapipe backend, per crop and per frame.

The OpenMMLab models are built from the wheels' configs with random weights (saved as user
checkpoints into a temporary model_dir, as a user's trained ones would be): a network times the
same whatever its weights, except the detector's box post-processing, which sees fewer
candidates with random weights (RTMDet keeps boxes scoring above 0.05 before NMS).

Per model: wall-clock and CPU milliseconds per call (median over calls), with ``--threads``
torch threads. Hand model: per crop at batch 1 and at batch 2 (the two hands of a frame in one
call). Per frame: detector + whole-body + two hands, as the pipeline runs them on a frame where
the detector runs. Frames: the first ``--frames`` of the Pose2Sim demo's cam01 (1080x1920).

Usage: ``.venv/bin/python benchmarks/bench_openmmlab.py [--frames 10] [--threads 1]
[--device cpu] [--person-config mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py]``
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


def save_random_checkpoints(cfg, model_dir: Path) -> None:
    """Random-weight checkpoints under the file names the backend looks for."""
    import torch

    from mvhand.backends.openmmlab import loading

    loading.prepare_torchvision()  # before mmpose imports torchvision
    from mmdet.apis import init_detector
    from mmpose.apis import init_model

    torch.manual_seed(0)
    for role, package in (("person", "mmdet"), ("body", "mmpose"), ("hand", "mmpose")):
        config, _ = loading.resolve_config(getattr(cfg, f"{role}_config"), role, package)
        name = loading.published_checkpoint(config).rsplit("/", 1)[-1]
        init = init_detector if package == "mmdet" else init_model
        torch.save(init(str(config), None, device="cpu").state_dict(), model_dir / name)


def frames(n: int) -> list[np.ndarray]:
    import cv2

    cap = cv2.VideoCapture(str(DATA / "pose2sim_single" / "videos" / "cam01.mp4"))
    out = []
    while len(out) < n:
        ok, frame = cap.read()
        if not ok:
            break
        out.append(np.ascontiguousarray(frame[:, :, ::-1]))
    cap.release()
    return out


def timed(fn, *args) -> tuple[object, float, float]:
    w, c = time.perf_counter(), time.process_time()
    out = fn(*args)
    return out, (time.perf_counter() - w) * 1e3, (time.process_time() - c) * 1e3


def bench(backend, images: list[np.ndarray], batch_hands: bool) -> dict[str, list]:
    """Per call ``(wall_ms, cpu_ms)`` lists for each model and the whole frame."""
    from mvhand.backends.base import PersonDetection
    from mvhand.core import crops

    t: dict[str, list] = {"person": [], "body": [], "hand per crop": [], "frame": []}
    if batch_hands:
        t["hand per crop, batch 2"] = []
    h, w = images[0].shape[:2]
    box = PersonDetection(np.array([w * 0.2, h * 0.1, w * 0.8, h * 0.95]), 1.0)
    for img in images:
        frame = np.zeros(2)
        people, *dt = timed(backend.person.detect, img)
        t["person"].append(dt)
        frame += dt
        pose, *dt = timed(backend.body.estimate, img, people[0] if people else box)
        t["body"].append(dt)
        frame += dt
        hand_crops = [crops.HandCrop(np.array([w * x, h * 0.5]), 120.0, 0.3) for x in (0.4, 0.6)]
        if pose is not None:
            found = [crops.hand_crops_from_body(pose, k) for k in (0, 1)]
            hand_crops = [f.crop if f is not None else c
                          for f, c in zip(found, hand_crops, strict=True)]
        for c in hand_crops:
            _, *dt = timed(backend.hand.estimate, img, c)
            t["hand per crop"].append(dt)
            frame += dt
        if batch_hands:
            _, *dt = timed(backend.hand.estimate_batch, img, hand_crops)
            t["hand per crop, batch 2"].append([v / 2 for v in dt])
        t["frame"].append(list(frame))
    return t


def report(name: str, t: dict[str, list]) -> None:
    for key, vals in t.items():
        arr = np.asarray(vals[1:] if len(vals) > 2 else vals)  # the first call warms up
        print(f"  {name:10s} {key:24s} wall {np.median(arr[:, 0]):8.1f} ms   "
              f"cpu {np.median(arr[:, 1]):8.1f} ms   (n={len(arr)})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--person-config", default=None)
    parser.add_argument("--no-mediapipe", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    from mvhand.backends.registry import BackendConfig, make_backend

    cfg = BackendConfig(name="openmmlab", device=args.device, num_threads=args.threads,
                        person_threshold=0.0, body_threshold=0.0)  # fmt: skip
    if args.person_config:
        cfg = dataclasses.replace(cfg, person_config=args.person_config)
    images = frames(args.frames)
    print(f"{len(images)} frames {images[0].shape[1]}x{images[0].shape[0]}, "
          f"{args.threads} thread(s), device {args.device}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        save_random_checkpoints(cfg, Path(tmp))
        mm = make_backend(dataclasses.replace(cfg, model_dir=tmp))
        print(f"openmmlab: {cfg.person_config.split('/')[-1]}, {cfg.body_config.split('/')[-1]}, "
              f"{cfg.hand_config.split('/')[-1]}")  # fmt: skip
        report("openmmlab", bench(mm, images, batch_hands=True))
    if not args.no_mediapipe:
        mp = make_backend(BackendConfig(num_threads=args.threads))
        report("mediapipe", bench(mp, images, batch_hands=False))


if __name__ == "__main__":
    main()
