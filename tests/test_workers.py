"""Cameras in parallel worker processes: the same results as the serial path, the same cache
and resume, progress relayed, and a failing camera named in a clear error.

Uses the synthetic scene and scripted backend of ``test_run_pipeline`` (three cameras whose
pixels encode the true projection), so each camera's 2D result is known exactly.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from test_run_pipeline import EXACT_2D_PX, Factory, FakeHand, Scene

from mvhand.backends.registry import Backend
from mvhand.errors import InputError, ModelError
from mvhand.io.video import probe_video
from mvhand.pipeline.cache import cache_path
from mvhand.pipeline.camera2d import Camera2D
from mvhand.pipeline.config import load_pipeline
from mvhand.pipeline.workers import (
    camera_tasks,
    compute_cameras_2d,
    compute_parallel,
    resolve_workers,
)

FRAMES = range(0, 12)


@pytest.fixture(scope="module")
def scene_videos(tmp_path_factory):
    scene = Scene()
    folder = scene.write(tmp_path_factory.mktemp("workers") / "videos")
    videos = {cam: folder / f"{cam}.avi" for cam in scene.rig.names}
    assert probe_video(videos["cam1"]).n_frames >= FRAMES.stop
    return scene, videos


def cfg_with(workers: int):
    return dataclasses.replace(load_pipeline(None), workers=workers)


def compute(scene, videos, out, workers, factory=None, progress=None, use_cache=True):
    events = []

    def record(*args):
        events.append(args)
        if progress is not None:
            progress(*args)

    res = compute_cameras_2d(videos, FRAMES, cfg_with(workers), out, record, use_cache,
                             factory or Factory(scene))  # fmt: skip
    return res, events


def assert_same(a: Camera2D, b: Camera2D) -> None:
    for name in Camera2D.ARRAYS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def test_parallel_equals_serial_and_caches_each_camera(scene_videos, tmp_path):
    scene, videos = scene_videos
    (serial, reused_s), _ = compute(scene, videos, tmp_path / "s", workers=1)
    (par, reused_p), events = compute(scene, videos, tmp_path / "p", workers=2)
    assert list(par) == list(serial) == list(videos)  # camera order, whoever finished first
    assert reused_s == reused_p == []
    for cam in videos:
        assert_same(serial[cam], par[cam])
        assert cache_path(tmp_path / "p", cam).is_file()
    # truth: the scripted models reproduce the true projections
    np.testing.assert_allclose(par["cam2"].keypoints_px, scene.proj[1, FRAMES],
                               atol=EXACT_2D_PX)  # fmt: skip
    # progress: every camera reports its last body frame and its tracking, from the workers
    for cam in videos:
        assert ("body", cam, len(FRAMES), len(FRAMES)) in events
        assert ("track", cam, 1, 1) in events
    # a second run reuses every cache file and needs no backend (nor any worker)
    (again, reused), _ = compute(scene, videos, tmp_path / "p", workers=2,
                                 factory=Factory(scene, fail=True))  # fmt: skip
    assert reused == list(videos)
    for cam in videos:
        assert_same(again[cam], serial[cam])


def test_resume_computes_only_missing_cameras(scene_videos, tmp_path):
    scene, videos = scene_videos
    compute(scene, videos, tmp_path, workers=1)
    cache_path(tmp_path, "cam2").unlink()
    (res, reused), events = compute(scene, videos, tmp_path, workers=2)
    assert reused == ["cam1", "cam3"] and list(res) == list(videos)
    assert cache_path(tmp_path, "cam2").is_file()
    np.testing.assert_allclose(res["cam2"].keypoints_px, scene.proj[1, FRAMES], atol=EXACT_2D_PX)


def lambda_factory(scene):
    return lambda cfg: Factory(scene)(cfg)  # cannot be pickled


def test_unpicklable_factory_or_fork_is_refused(scene_videos, tmp_path):
    scene, videos = scene_videos
    tasks = camera_tasks(videos, FRAMES, cfg_with(2), tmp_path)
    with pytest.raises(ModelError, match="cannot be pickled"):
        compute_parallel(tasks, 2, lambda *a: None, lambda_factory(scene))
    with pytest.raises(ModelError, match="fork is not a safe"):
        compute_parallel(tasks, 2, lambda *a: None, Factory(scene), "fork")
    assert not (tmp_path / "cache").exists()


class BrokenHand(FakeHand):
    """Fails on one camera, as a model with a bug would."""

    def estimate(self, image, crop):
        c, _, _ = Scene.decode(image)
        if c == 1:
            raise ZeroDivisionError("scripted failure")
        return super().estimate(image, crop)


class BrokenFactory(Factory):
    def __call__(self, cfg):
        b = super().__call__(cfg)
        return Backend(b.person, b.body, BrokenHand(self.scene), "broken")


class FailingFactory(Factory):
    def __call__(self, cfg):
        raise InputError("model file not found", "/models/hand.tflite")


@pytest.mark.parametrize("workers", [1, 2])
def test_worker_exception_names_the_camera(scene_videos, tmp_path, workers):
    scene, videos = scene_videos
    with pytest.raises(ModelError, match="camera 'cam2'.*ZeroDivisionError: scripted failure"):
        compute(scene, videos, tmp_path, workers=workers, factory=BrokenFactory(scene))
    assert not cache_path(tmp_path, "cam2").exists()
    assert not list((tmp_path / "cache").glob(".*tmp"))
    # mvhand's own errors keep their type
    with pytest.raises(InputError, match="camera 'cam1'.*hand.tflite: model file not found"):
        compute(scene, videos, tmp_path / "b", workers=workers, factory=FailingFactory(scene))


def test_interrupt_stops_the_workers_and_keeps_no_partial_file(scene_videos, tmp_path):
    scene, videos = scene_videos

    def interrupt(stage, camera, done, total):
        if stage == "track" and done == 1:  # the first camera to finish
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        compute(scene, videos, tmp_path, workers=2, progress=interrupt)
    assert not list((tmp_path / "cache").glob(".*tmp"))
    finished = [cam for cam in videos if cache_path(tmp_path, cam).is_file()]
    assert 1 <= len(finished) <= 3
    (res, reused), _ = compute(scene, videos, tmp_path, workers=2)
    assert set(finished) <= set(reused) and list(res) == list(videos)


def test_resolve_workers():
    assert resolve_workers(1, 4) == 1
    assert resolve_workers(8, 3) == 3
    assert resolve_workers(2, 0) == 1
    assert 1 <= resolve_workers(0, 100) <= 100
