"""The openmmlab backend with real models: RTMDet-tiny, RTMPose-m whole-body and RTMPose-m hand,
built from the configs inside the installed mmdet / mmpose wheels with random weights (no
trained checkpoint can be had here), saved as user checkpoints and loaded by the backend.

Truth without trained weights: the hand model's SimCC head is set so that its argmax lands on
the model-input pixel where mmpose's own warp puts a blob drawn at a known image pixel; mvhand
must report that image pixel, for rotated, off-centre and border-clipped crops. Batching is
checked against one-by-one calls, and the backend is built with the network cut off.

Skipped, with the reason, where the OpenMMLab stack is not installed (a user's machine without
``scripts/install_openmmlab.sh``); CI installs it.
"""

from __future__ import annotations

import dataclasses
import socket
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("mmpose", reason="the OpenMMLab stack is not installed "
                    "(bash scripts/install_openmmlab.sh)")  # fmt: skip
pytest.importorskip("mmdet", reason="mmdet is not installed (bash scripts/install_openmmlab.sh)")

from mvhand.backends import registry  # noqa: E402
from mvhand.backends.base import BodyPose, HandCrop, HandKeypoints, PersonDetection  # noqa: E402
from mvhand.backends.openmmlab import estimators, loading  # noqa: E402
from mvhand.errors import ConfigError, ModelError  # noqa: E402

pytestmark = pytest.mark.slow

PERSON_CONFIG = "mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py"
BODY_CONFIG = registry.BackendConfig().body_config
HAND_CONFIG = registry.BackendConfig().hand_config
#: The blob's centroid in the warped model input is found to about 0.05 input pixels; the
#: SimCC bins are half input pixels. Reported positions must agree within this many input
#: pixels (a half-pixel convention error would be 0.5, a wrong rotation sign tens).
GEOMETRY_TOL_INPUT_PX = 0.15
BATCH_TOL_PX = 1e-3


def _published_name(spec: str, package: str) -> str:
    config, _ = loading.resolve_config(spec, "x", package)
    url = loading.published_checkpoint(config)
    assert url is not None, f"{config} has no entry in the wheel's model index"
    return url.rsplit("/", 1)[-1]


def _save_random_checkpoints(model_dir: Path) -> None:
    """Random-weight checkpoints under their published file names, built by OpenMMLab's own
    initialisers (not mvhand's loader): the detector as a bare state dict, its classifier set
    to find people everywhere; the pose models with mmpose's metadata (numpy arrays: the
    non-weights_only path)."""
    import torch

    loading.prepare_torchvision()  # before mmpose imports torchvision (see its docstring)
    from mmdet.apis import init_detector
    from mmpose.apis import init_model

    torch.manual_seed(0)
    for spec, package in ((BODY_CONFIG, "mmpose"), (HAND_CONFIG, "mmpose")):
        config, _ = loading.resolve_config(spec, "x", package)
        model = init_model(str(config), None, device="cpu")
        torch.save({"state_dict": model.state_dict(), "meta": {"dataset_meta": model.dataset_meta}},
                   model_dir / _published_name(spec, package))  # fmt: skip
    config, _ = loading.resolve_config(PERSON_CONFIG, "x", "mmdet")
    det = init_detector(str(config), None, device="cpu")
    with torch.no_grad():  # every anchor is a person (p = 0.99), so there is someone to follow
        for conv in det.bbox_head.rtm_cls:
            conv.weight.zero_()
            conv.bias.fill_(-10.0)
            conv.bias[0::80] = 5.0  # class 0 of each prior: COCO's person
    torch.save(det.state_dict(), model_dir / _published_name(PERSON_CONFIG, "mmdet"))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("openmmlab_models")
    _save_random_checkpoints(folder)
    return folder


@pytest.fixture(scope="module")
def backend_cfg(model_dir) -> registry.BackendConfig:
    return registry.BackendConfig(name="openmmlab", model_dir=str(model_dir),
                                  person_config=PERSON_CONFIG, person_threshold=0.0,
                                  body_threshold=0.0)  # fmt: skip


@pytest.fixture(scope="module")
def built(backend_cfg):
    """The backend, built and run once with every network connection refused."""
    attempts: list = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network access attempted in a test")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", refuse)
        mp.setattr(socket, "create_connection", refuse)
        backend = registry.make_backend(backend_cfg)
        image = np.zeros((120, 160, 3), np.uint8)
        backend.person.detect(image)
        backend.body.estimate(image, None)
        backend.hand.estimate(image, HandCrop(np.array([80.0, 60.0]), 80.0, 0.3))
    return backend, attempts


@pytest.fixture(scope="module")
def backend(built) -> registry.Backend:
    return built[0]


@pytest.fixture(scope="module")
def messi(shared_data) -> np.ndarray:
    path = shared_data / "images" / "messi5.jpg"
    return np.ascontiguousarray(cv2.imread(str(path))[:, :, ::-1])


def test_backend_builds_without_network(built):
    backend, attempts = built
    assert backend.name == "openmmlab" and attempts == []


def test_models_on_the_chosen_device(backend):
    for model in (backend.person.model, backend.body.topdown.model, backend.hand.topdown.model):
        assert {p.device.type for p in model.parameters()} == {"cpu"}


def test_cuda_without_gpu_is_a_clear_error(backend_cfg):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    with pytest.raises(ConfigError, match="'backend.device' = 'cuda:0'.*no CUDA device"):
        registry.make_backend(dataclasses.replace(backend_cfg, device="cuda:0"))


def test_runs_on_a_real_image(backend, messi):
    people = backend.person.detect(messi)
    assert 1 <= len(people) <= backend.person.max_people
    for p in people:
        assert isinstance(p, PersonDetection) and p.box_xyxy.shape == (4,)
        assert 0.0 <= p.score <= 1.0 and np.isfinite(p.box_xyxy).all()
    assert [p.score for p in people] == sorted((p.score for p in people), reverse=True)
    box = people[0] if people else None
    pose = backend.body.estimate(messi, box)
    assert isinstance(pose, BodyPose) and pose.layout == "coco_wholebody133"
    assert pose.keypoints_px.shape == (133, 2) and pose.scores.shape == (133,)
    _check_scores(pose.keypoints_px, pose.scores)
    res = backend.hand.estimate(messi, HandCrop(np.array([362.0, 167.0]), 90.0, 0.4))
    assert isinstance(res, HandKeypoints) and res.keypoints_px.shape == (21, 2)
    _check_scores(res.keypoints_px, res.scores)
    assert 0.0 <= res.presence <= 1.0


def _check_scores(kp: np.ndarray, sc: np.ndarray) -> None:
    assert ((sc >= 0.0) & (sc <= 1.0)).all()
    found = np.isfinite(kp).all(axis=1)
    assert (sc[~found] == 0.0).all() and (sc[found] > 0.0).all()


def test_batch_equals_one_by_one(backend, messi):
    crops = [HandCrop(np.array([362.0, 167.0]), 90.0, 0.4),
             HandCrop(np.array([88.0, 98.0]), 70.0, -2.0),
             HandCrop(np.array([10.0, 330.0]), 120.0, 3.0)]  # fmt: skip
    batch = backend.hand.estimate_batch(messi, crops)
    for crop, b in zip(crops, batch, strict=True):
        one = backend.hand.estimate(messi, crop)
        np.testing.assert_allclose(b.keypoints_px, one.keypoints_px, atol=BATCH_TOL_PX)
        np.testing.assert_allclose(b.scores, one.scores, atol=1e-4)
    boxes = [PersonDetection(np.array([20.0, 10.0, 300.0, 330.0]), 1.0), None]
    poses = backend.body.estimate_batch(messi, boxes)
    for box, b in zip(boxes, poses, strict=True):
        one = backend.body.estimate(messi, box)
        np.testing.assert_allclose(b.keypoints_px, one.keypoints_px, atol=BATCH_TOL_PX)


@pytest.fixture
def hand_head(backend):
    """The hand model's head, its SimCC classifiers restored after the test, with flip test off
    (a constant head output is mirror-symmetric only about the centre)."""
    model = backend.hand.topdown.model
    saved = (model.head.cls_x, model.head.cls_y)
    flip = model.test_cfg.get("flip_test", False)
    model.test_cfg["flip_test"] = False
    yield model.head
    model.head.cls_x, model.head.cls_y = saved
    model.test_cfg["flip_test"] = flip


def _set_bins(head, bin_x: int, bin_y: int, value: float) -> None:
    """Replace the head's SimCC classifiers (bias-free linear layers) by constant ones whose
    output peaks at ``value`` on the given bins."""
    import torch

    for name, b in (("cls_x", bin_x), ("cls_y", bin_y)):
        old = getattr(head, name)
        layer = torch.nn.Linear(old.in_features, old.out_features, bias=True)
        with torch.no_grad():
            layer.weight.zero_()
            layer.bias.fill_(-10.0)
            layer.bias[b] = value
        setattr(head, name, layer.eval())


def _blob(shape: tuple[int, int], p: np.ndarray, sigma: float = 4.0) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    g = np.exp(-((xx - p[0]) ** 2 + (yy - p[1]) ** 2) / (2 * sigma**2))
    return np.repeat((g * 255).astype(np.uint8)[:, :, None], 3, axis=2)


def _warped_centroid(topdown, image: np.ndarray, crop: HandCrop) -> np.ndarray:
    """Where mmpose's own test pipeline puts the blob in the model input (input pixels)."""
    data = topdown.pipeline({"img": estimators.as_bgr(image), "bbox_score": np.ones(1),
                             **estimators.hand_item(crop), **topdown.meta})  # fmt: skip
    w = data["inputs"].numpy().astype(float).sum(axis=0)
    w = np.where(w > 0.2 * w.max(), w, 0.0)
    yy, xx = np.mgrid[: w.shape[0], : w.shape[1]]
    return np.array([(w * xx).sum(), (w * yy).sum()]) / w.sum()


CROPS = {
    "upright": (HandCrop(np.array([320.0, 240.0]), 180.0, 0.0), (20.0, -30.0)),
    "rotated": (HandCrop(np.array([300.0, 250.0]), 200.0, np.radians(35.0)), (-25.0, 30.0)),
    "off_centre": (HandCrop(np.array([560.0, 120.0]), 150.0, np.radians(-120.0)), (30.0, 15.0)),
    "border_clipped": (HandCrop(np.array([25.0, 20.0]), 220.0, np.radians(10.0)), (30.0, 35.0)),
}


@pytest.mark.parametrize("case", sorted(CROPS))
def test_geometry_known_head_output_maps_to_the_blob(backend, hand_head, case):
    """A blob at image pixel P, seen by the model at input pixel q (mmpose's warp); the head
    answers q (to the nearest SimCC bin), and mvhand must report P (plus that rounding, taken
    back along mvhand's crop axes: right = (cos a, -sin a), down = (sin a, cos a))."""
    crop, offset = CROPS[case]
    a = crop.angle_rad
    right, down = np.array([np.cos(a), -np.sin(a)]), np.array([np.sin(a), np.cos(a)])
    p = np.asarray(crop.center_px) + offset[0] * right + offset[1] * down
    image = _blob((480, 640), p)
    topdown = backend.hand.topdown
    q = _warped_centroid(topdown, image, crop)
    ratio = float(topdown.model.head.simcc_split_ratio)
    bins = np.round(q * ratio).astype(int)
    _set_bins(hand_head, int(bins[0]), int(bins[1]), 0.8)
    res = backend.hand.estimate(image, crop)
    px_per_input = crop.size_px * estimators.HAND_BOX_FRACTION / topdown.input_size[0]
    d = bins / ratio - q
    expected = p + px_per_input * (d[0] * right + d[1] * down)
    np.testing.assert_allclose(res.keypoints_px, np.tile(expected, (21, 1)),
                               atol=GEOMETRY_TOL_INPUT_PX * px_per_input)  # fmt: skip
    np.testing.assert_allclose(res.scores, 0.8, atol=1e-5)
    assert res.presence == pytest.approx(0.8, abs=1e-5)


def test_convention_rotation_sign(backend):
    """mmpose's warp of ``hand_item(crop)`` puts the crop's up direction (mvhand's
    ``(-sin a, -cos a)``) straight above the model input's centre."""
    topdown = backend.hand.topdown
    for a in np.radians([0.0, 30.0, 90.0, -135.0]):
        crop = HandCrop(np.array([200.0, 150.0]), 100.0, float(a))
        item = estimators.hand_item(crop)
        m = topdown._warp(item["bbox_center"][0], item["bbox_scale"][0], item["bbox_rotation"][0])
        up = np.array([-np.sin(a), -np.cos(a)])
        q0, q1 = (m[:, :2] @ pt + m[:, 2] for pt in (crop.center_px, crop.center_px + 20 * up))
        assert q1[0] == pytest.approx(q0[0], abs=1e-3) and q1[1] < q0[1]


def test_non_positive_head_output_is_nan(backend, hand_head):
    _set_bins(hand_head, 100, 100, -0.5)
    res = backend.hand.estimate(np.zeros((200, 200, 3), np.uint8),
                                HandCrop(np.array([100.0, 100.0]), 100.0, 0.0))  # fmt: skip
    assert np.isnan(res.keypoints_px).all() and (res.scores == 0).all() and res.presence == 0.0


def test_wrong_kind_of_model_is_refused(backend_cfg):
    with pytest.raises(ModelError, match="21 keypoints; the openmmlab backend needs 133"):
        registry.make_backend(dataclasses.replace(
            backend_cfg, body_config=HAND_CONFIG, body_checkpoint=None))  # fmt: skip


def test_missing_checkpoint_with_the_wheels_configs(tmp_path):
    cfg = registry.BackendConfig(name="openmmlab", model_dir=str(tmp_path))
    with pytest.raises(ModelError) as err:
        registry.make_backend(cfg)
    msg = str(err.value)
    assert "\n" not in msg and "person model" in msg and "rtmdet_m_8xb32-300e_coco" in msg
    assert "https://" in msg and str(tmp_path) in msg


def _two_camera_videos(shared_data: Path, tmp_path: Path, frames: int) -> Path:
    """The first frames of two Pose2Sim demo cameras, as short videos."""
    videos = tmp_path / "videos"
    videos.mkdir()
    for cam in ("cam01", "cam02"):
        cap = cv2.VideoCapture(str(shared_data / "pose2sim_single" / "videos" / f"{cam}.mp4"))
        ok, frame = cap.read()
        writer = cv2.VideoWriter(str(videos / f"{cam}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"),
                                 60.0, (frame.shape[1], frame.shape[0]))  # fmt: skip
        for _ in range(frames):
            assert ok
            writer.write(frame)
            ok, frame = cap.read()
        writer.release()
        cap.release()
    return videos


def _layout(out: Path) -> list[str]:
    """The run folder's files, the per-run set folder's name (a time stamp) generalised."""
    names = []
    for path in out.rglob("*"):
        parts = list(path.relative_to(out).parts)
        if parts[0] == ".sets" and len(parts) > 1 and parts[1] != "current":
            parts[1] = "<set>"
        names.append("/".join(parts))
    return sorted(names)


def _run_cli(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mvhand", "run", *args], capture_output=True,
                          text=True, timeout=900)  # fmt: skip


def test_mvhand_run_with_either_backend_writes_the_same_layout(shared_data, model_dir,
                                                                tmp_path):  # fmt: skip
    """``mvhand run`` on 2 cameras x 3 frames of the Pose2Sim demo with the openmmlab backend
    (random weights: the output is meaningless, the plumbing whole) and with mediapipe."""
    if not (shared_data / "pose2sim_single" / "videos").is_dir():
        pytest.skip("the Pose2Sim demo videos are not in ../shared/data")
    videos = _two_camera_videos(shared_data, tmp_path, 3)
    calib = shared_data / "pose2sim_single" / "Calib.qca.txt"
    common = ["--calib", str(calib), "--workers", "1"]
    mm = ["--set", "backend.name=openmmlab", "--set", f"backend.model_dir={model_dir}",
          "--set", f"backend.person_config={PERSON_CONFIG}",
          "--set", "backend.person_threshold=0.0", "--set", "backend.body_threshold=0.0",
          "--set", "detect.min_body_score=0.0", "--set", "tracking.seed_min_confidence=0.0",
          "--set", "tracking.min_presence=0.0"]  # fmt: skip
    layouts = {}
    for name, extra in (("openmmlab", mm), ("mediapipe", [])):
        out = tmp_path / name
        res = _run_cli([*common, "--out", str(out), *extra, str(videos)])
        assert res.returncode == 0, res.stderr[-3000:]
        layouts[name] = _layout(out)
        saved = (out / "config.toml").read_text()
        assert f'name = "{name}"' in saved
    assert layouts["openmmlab"] == layouts["mediapipe"]
    assert {"hands3d.npz", "keypoints2d.npz", "cache/cam01.npz", "cache/cam02.npz"} <= set(
        layouts["openmmlab"])
