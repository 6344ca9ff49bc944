"""The three OpenMMLab models behind mvhand's Protocols, run through their own pipelines.

Person detection: the detector config's test pipeline (resize, pad) with the image given as an
array; mmdet rescales its boxes to the image. Only the ``person`` class is kept.

Whole-body and hand models (mmpose top-down): the config's test pipeline without its image
loader. For the body, mmpose's own ``GetBBoxCenterScale`` pads the person box (1.25 in the
shipped configs) and ``TopdownAffine`` warps it upright; mmpose maps the decoded keypoints back
itself. For a hand, mvhand gives the rotated square (:class:`~mvhand.backends.base.HandCrop`):
its centre, a side of ``HAND_BOX_FRACTION`` of the crop's and a rotation go straight to
``TopdownAffine`` (mmpose's rotated warp, as used in its training augmentation), and since
mmpose's own back-mapping ignores rotation, mvhand finishes it: mmpose's upright result is
taken back to model-input pixels by the upright warp and from there to the image by the
rotated warp's inverse, both built by mmpose's own warp functions (UDP or not, as the config's
``TopdownAffine`` says).

Scores. mmpose's SimCC and heatmap decoders give per-joint maxima that are not probabilities:
they are clipped to [0, 1], and a joint whose maximum is <= 0 (which mmpose marks by placing it
at -1) is NaN with score 0. A hand model gives no hand-presence output: ``presence`` is the mean
of the clipped joint scores; the body's presence is the mean over its 17 body keypoints.

Images enter mmpose and mmdet as BGR, as their image loaders produce them; the configs' data
preprocessors then convert to RGB where the model wants it.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from mvhand.backends.base import BodyPose, HandCrop, HandKeypoints, PersonDetection
from mvhand.core.crops import HAND_KEYPOINT_SCALE
from mvhand.errors import ModelError

log = logging.getLogger(__name__)

#: The hand model's square (mmpose's padded hand box) over mvhand's hand crop side. mmpose
#: trains on hand boxes padded 1.25x; mvhand's crops are ``HAND_KEYPOINT_SCALE`` (1.8) times
#: the hand's keypoint extent, so the model sees the hand framed as in its training.
HAND_BOX_FRACTION = 1.25 / HAND_KEYPOINT_SCALE
#: COCO-WholeBody: keypoints 0-16 are the body.
N_BODY = 17
WHOLEBODY_K = 133
HAND_K = 21


def _scope(package: str):
    from mmengine.registry import DefaultScope

    return DefaultScope.overwrite_default_scope(package)


def _pipeline_cfg(cfg: Any, path: str) -> list[dict]:
    """The config's test pipeline as a list of dicts."""
    for getter in (lambda: cfg.test_dataloader.dataset.pipeline, lambda: cfg.test_pipeline,
                   lambda: cfg.val_dataloader.dataset.pipeline):  # fmt: skip
        try:
            steps = getter()
        except (AttributeError, KeyError):
            continue
        if steps:
            return [dict(s) for s in steps]
    raise ModelError(f"{path}: the config has no test pipeline (test_dataloader.dataset."
                     f"pipeline)")  # fmt: skip


def _type(step: dict) -> str:
    return str(step.get("type", "")).split(".")[-1]


def as_bgr(image_rgb: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB -> contiguous BGR, as mmcv's image loader gives it."""
    return np.ascontiguousarray(np.asarray(image_rgb)[..., ::-1])


def clean_scores(keypoints: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scores clipped to [0, 1]; joints with a non-positive score or position NaN, score 0."""
    kp = np.array(keypoints, dtype=np.float64)
    sc = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=0.0)
    bad = (sc <= 0.0) | ~np.isfinite(kp).all(axis=-1)
    kp[bad] = np.nan
    return kp, np.where(bad, 0.0, np.clip(sc, 0.0, 1.0))


class TopdownModel:
    """An mmpose top-down model with its config's test pipeline (minus the image loader).

    Args:
        model: the built, loaded mmpose model in eval mode.
        cfg: its mmengine Config.
        dataset_meta: keypoint metadata (flip indices) from the checkpoint or the config.
        path: the config file (for messages).
        from_boxes: keep ``GetBBoxCenterScale`` (body: inputs are boxes); False (hand): inputs
            are centre, scale and rotation.
    """

    def __init__(self, model: Any, cfg: Any, dataset_meta: dict, path: str,
                 from_boxes: bool) -> None:  # fmt: skip
        from mmcv.transforms import Compose

        steps = [s for s in _pipeline_cfg(cfg, path) if _type(s) != "LoadImage"]
        if not from_boxes:
            steps = [s for s in steps if _type(s) != "GetBBoxCenterScale"]
        affine = [s for s in steps if _type(s) == "TopdownAffine"]
        if not affine:
            raise ModelError(f"{path}: not a top-down config (no TopdownAffine in its test "
                             f"pipeline)")  # fmt: skip
        self.input_size = tuple(int(v) for v in affine[0]["input_size"])
        self.use_udp = bool(affine[0].get("use_udp", False))
        with _scope("mmpose"):
            self.pipeline = Compose(steps)
        self.model, self.meta = model, dataset_meta
        self.n_keypoints = int(dataset_meta.get("num_keypoints", 0))

    def _warp(self, center: np.ndarray, scale: np.ndarray, rot_deg: float) -> np.ndarray:
        from mmpose.structures.bbox import get_udp_warp_matrix, get_warp_matrix

        fn = get_udp_warp_matrix if self.use_udp else get_warp_matrix
        return fn(np.asarray(center, np.float32), np.asarray(scale, np.float32), float(rot_deg),
                  output_size=self.input_size)  # fmt: skip

    def run(self, image_bgr: np.ndarray, items: list[dict]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Run on one image for each item (a dict of pipeline inputs: ``bbox`` or
        ``bbox_center``/``bbox_scale``/``bbox_rotation``), in one batch.

        Returns:
            per item ``(keypoints (K, 2) image px, scores (K,))``, raw (unclipped) scores.
        """
        import torch
        from mmengine.dataset import pseudo_collate

        if not items:
            return []
        data = []
        for item in items:
            info = {"img": image_bgr, "bbox_score": np.ones(1, np.float32), **item}
            info.update(self.meta)
            data.append(self.pipeline(info))
        with torch.no_grad(), _scope("mmpose"):
            samples = self.model.test_step(pseudo_collate(data))
        out = []
        for item, sample in zip(items, samples, strict=True):
            kp = sample.pred_instances.keypoints[0, :, :2].astype(np.float64)
            sc = np.asarray(sample.pred_instances.keypoint_scores[0], dtype=np.float64)
            rot = float(np.asarray(item.get("bbox_rotation", [0.0]))[0])
            if rot:
                kp = self._unrotate(kp, sample.metainfo, rot)
            out.append((kp, sc))
        return out

    def _unrotate(self, kp: np.ndarray, meta: dict, rot_deg: float) -> np.ndarray:
        """mmpose's back-mapping of a rotated crop (upright) -> image pixels."""
        import cv2

        center, scale = meta["input_center"], meta["input_scale"]
        upright = self._warp(center, scale, 0.0)
        inverse = cv2.invertAffineTransform(self._warp(center, scale, rot_deg))
        model_px = kp @ upright[:, :2].T + upright[:, 2]
        return model_px @ inverse[:, :2].T + inverse[:, 2]


class MmposeBodyPose:
    """A COCO-WholeBody (133 keypoints) top-down model on the person's box.

    A pose whose presence (mean clipped score of the 17 body keypoints) is below
    ``presence_threshold`` is not reported.
    """

    def __init__(self, topdown: TopdownModel, presence_threshold: float = 0.5) -> None:
        self.topdown = topdown
        self.presence_threshold = presence_threshold

    def estimate(self, image_rgb: np.ndarray, box: PersonDetection | None) -> BodyPose | None:
        """Body keypoints of the person in ``box`` (the whole frame if None)."""
        return self.estimate_batch(image_rgb, [box])[0]

    def estimate_batch(self, image_rgb: np.ndarray, boxes: list[PersonDetection | None]
                       ) -> list[BodyPose | None]:  # fmt: skip
        """:meth:`estimate` for several people of one frame, in one batch."""
        h, w = image_rgb.shape[:2]
        items = [{"bbox": np.asarray([[0.0, 0.0, w, h]] if b is None else [b.box_xyxy],
                                     np.float32)} for b in boxes]  # fmt: skip
        out: list[BodyPose | None] = []
        for kp, sc in self.topdown.run(as_bgr(image_rgb), items):
            kp, sc = clean_scores(kp, sc)
            if float(sc[:N_BODY].mean()) < self.presence_threshold:
                out.append(None)
            else:
                out.append(BodyPose(keypoints_px=kp, scores=sc, layout="coco_wholebody133"))
        return out


def hand_item(crop: HandCrop) -> dict:
    """mmpose pipeline inputs for mvhand's rotated square ``crop``.

    mmpose's rotation ``r`` (degrees) turns the image direction ``(sin r, -cos r)`` to the
    crop's up; mvhand's crop up is ``(-sin a, -cos a)``, so ``r = -a``.
    """
    side = float(crop.size_px) * HAND_BOX_FRACTION
    center = np.asarray(crop.center_px, dtype=np.float32)
    half = side / 2.0
    rot_deg = -np.degrees(float(crop.angle_rad))
    return {"bbox": np.asarray([[*(center - half), *(center + half)]], np.float32),
            "bbox_center": center[None], "bbox_scale": np.array([[side, side]], np.float32),
            "bbox_rotation": np.array([rot_deg], np.float32)}  # fmt: skip


class MmposeHandKeypoints:
    """A 21-keypoint mmpose hand model on mvhand's rotated crops (see the module docstring)."""

    def __init__(self, topdown: TopdownModel) -> None:
        self.topdown = topdown

    def estimate(self, image_rgb: np.ndarray, crop: HandCrop) -> HandKeypoints:
        """21 keypoints in image pixels for the hand in ``crop``."""
        return self.estimate_batch(image_rgb, [crop])[0]

    def estimate_batch(self, image_rgb: np.ndarray, crops: list[HandCrop]) -> list[HandKeypoints]:
        """:meth:`estimate` for all hand crops of one frame, in one batch."""
        out = []
        for kp, sc in self.topdown.run(as_bgr(image_rgb), [hand_item(c) for c in crops]):
            kp, sc = clean_scores(kp, sc)
            out.append(HandKeypoints(keypoints_px=kp, scores=sc, presence=float(sc.mean())))
        return out


class MmdetPersonDetector:
    """An mmdet detector on the whole frame; people (its ``person`` class) best first.

    Args:
        model: the built, loaded mmdet model in eval mode.
        cfg: its mmengine Config.
        person_label: the index of the ``person`` class.
        path: the config file (for messages).
        score_threshold: minimum detection score.
        max_people: at most this many people.
    """

    def __init__(self, model: Any, cfg: Any, person_label: int, path: str,
                 score_threshold: float = 0.5, max_people: int = 5) -> None:  # fmt: skip
        from mmcv.transforms import Compose

        steps = [s for s in _pipeline_cfg(cfg, path) if _type(s) != "LoadAnnotations"]
        if not steps or "Load" not in _type(steps[0]):
            raise ModelError(f"{path}: the detector's test pipeline does not start with an "
                             f"image loader")  # fmt: skip
        steps[0] = {"type": "mmdet.LoadImageFromNDArray"}
        with _scope("mmdet"):
            self.pipeline = Compose(steps)
        self.model, self.person_label = model, person_label
        self.score_threshold, self.max_people = score_threshold, max_people

    def detect(self, image_rgb: np.ndarray) -> list[PersonDetection]:
        """People in ``image_rgb`` ``(H, W, 3)`` uint8 RGB, best first."""
        import torch
        from mmengine.dataset import pseudo_collate

        data = self.pipeline({"img": as_bgr(image_rgb), "img_id": 0})
        with torch.no_grad(), _scope("mmdet"):
            pred = self.model.test_step(pseudo_collate([data]))[0].pred_instances
        boxes = pred.bboxes.detach().cpu().numpy().astype(np.float64)
        scores = pred.scores.detach().cpu().numpy().astype(np.float64)
        labels = pred.labels.detach().cpu().numpy()
        keep = (labels == self.person_label) & (scores >= self.score_threshold)
        keep &= np.isfinite(boxes).all(axis=1) & (boxes[:, 2] > boxes[:, 0]) & (
            boxes[:, 3] > boxes[:, 1])
        order = np.flatnonzero(keep)[np.argsort(-scores[keep], kind="stable")]
        return [PersonDetection(box_xyxy=boxes[i], score=float(np.clip(scores[i], 0.0, 1.0)))
                for i in order[: self.max_people]]  # fmt: skip
