"""The embedded, offline default backend: the MediaPipe 0.10.21 models on our own crops.

Models (Apache-2.0, shipped inside the ``mediapipe==0.10.21`` wheel, found without importing
mediapipe itself): ``pose_detection.tflite`` (BlazePose person detector, anchored on the face),
``pose_landmark_full.tflite`` (33 body keypoints) and ``hand_landmark_full.tflite``
(21 hand keypoints on a 224x224 crop).

Why a TFLite interpreter (``ai-edge-litert``) and not mediapipe's legacy ``solutions`` API:
the solutions graphs choose their own regions of interest (palm detection, MediaPipe's
left/right labels, face-anchored person ROI) and cannot be fed our rotated, tracked hand crops;
run through the interpreter the models take exactly the crops the pipeline chooses, per-model
timings are visible, and nothing is imported at ``import mvhand`` time. Measured with
``benchmarks/bench_frontend_models.py`` (one thread, machine shared and loaded, so absolute
figures are inflated about 2-3x): on 40 body-derived hand crops of Pose2Sim frames
``mp.solutions.Hands`` took 53 ms per crop and found 22 hands, the hand model alone 16 ms and
26 hands (presence > 0.5); ``mp.solutions.Pose`` took 89 ms per 1080x1920 frame, our detector
plus body model 75 ms. ``cv2.dnn`` cannot load these models (unsupported DENSIFY op).

The palm detector (``palm_detection_full.tflite``, ~10 ms per call unloaded) is not used: on
a whole 1080x1920 frame letterboxed to 192 px a 40 px hand is 4 px wide, and on our crops it
only repeats what the hand model's presence says (the legacy ``Hands``, which runs it first,
found fewer hands on the same crops, above). :func:`model_path` still locates it.

The body model's heatmap refinement step (MediaPipe's RefineLandmarksFromHeatmap) is left out:
the body only places hand crops, which the hand model then localises.

Pre- and post-processing follow MediaPipe's graphs (``pose_detection_cpu.pbtxt``,
``pose_detection_to_roi.pbtxt``, ``tensors_to_pose_landmarks_and_segmentation.pbtxt``,
``hand_landmark_cpu.pbtxt``): SSD anchors and weighted NMS for the detector, a rotated square
ROI of 1.25 x the detector's body circle for the body model, [0, 1] RGB input for the landmark
models, sigmoid on the body's visibility logits. Model outputs are in continuous pixel
coordinates (pixel ``i`` spans ``[i, i + 1)``); 0.5 is subtracted to reach OpenCV's convention.

Hand joint scores: the hand model gives one presence probability per crop and no per-joint
confidence. Each joint's score is that presence, reduced linearly to 0 for joints the model
places outside the crop (0 at ``OUTSIDE_MARGIN`` of the crop side beyond its border), because
such joints are extrapolated, not seen. Joints below ``joint_threshold`` (0 by default: the
pipeline's hands2d stage applies the paper's threshold) are dropped.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import numpy as np

from mvhand.backends.base import (
    BodyPose,
    HandCrop,
    HandDetection,
    HandKeypoints,
    PersonDetection,
)
from mvhand.backends.registry import Backend, BackendConfig
from mvhand.core.crops import angle_from_direction, crop_affine, crop_to_image
from mvhand.core.skeleton import N_JOINTS
from mvhand.errors import MissingDependencyError, ModelError

log = logging.getLogger(__name__)

MEDIAPIPE_PIP = "pip install mediapipe==0.10.21"
LITERT_PIP = "pip install ai-edge-litert"

MODEL_FILES: dict[str, str] = {
    "person": "modules/pose_detection/pose_detection.tflite",
    "body": "modules/pose_landmark/pose_landmark_full.tflite",
    "hand": "modules/hand_landmark/hand_landmark_full.tflite",
    "palm": "modules/palm_detection/palm_detection_full.tflite",
}

#: Body ROI side over the detector's body-circle diameter (MediaPipe's detection-to-ROI 1.25).
BODY_ROI_SCALE = 1.25
#: Body ROI side over the larger side of a plain person box (no detector keypoints).
BOX_ROI_SCALE = 1.25
#: Hand joints placed this fraction of the crop side outside the crop get score 0.
OUTSIDE_MARGIN = 0.1
#: Weighted NMS overlap threshold of MediaPipe's pose detector graph.
NMS_IOU = 0.3


def model_path(key: str) -> Path:
    """Path of a model file inside the installed mediapipe wheel (without importing it).

    Raises:
        MissingDependencyError: mediapipe is not installed.
        ModelError: the wheel has no such model (mediapipe releases after 0.10.21 ship none).
    """
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or spec.origin is None:
        raise MissingDependencyError(
            f"the 'mediapipe' backend needs the models inside mediapipe 0.10.21: {MEDIAPIPE_PIP}")
    path = Path(spec.origin).parent / MODEL_FILES[key]
    if not path.is_file():
        raise ModelError(f"{path}: model file not found; only mediapipe 0.10.21 and older ship "
                         f"the models: {MEDIAPIPE_PIP}")  # fmt: skip
    return path


class TFLiteModel:
    """One ``.tflite`` model behind a LiteRT interpreter; call it with one input image.

    Args:
        path: the model file.
        num_threads: CPU threads for the interpreter.
    """

    def __init__(self, path: Path, num_threads: int = 1) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise MissingDependencyError(
                f"the 'mediapipe' backend runs its models with LiteRT: {LITERT_PIP}") from None
        try:
            self._interp = Interpreter(model_path=str(path), num_threads=num_threads)
            self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"{path}: cannot load the TFLite model ({exc})") from None
        inp = self._interp.get_input_details()[0]
        self.input_hw: tuple[int, int] = (int(inp["shape"][1]), int(inp["shape"][2]))
        self._input_index = inp["index"]
        outs = sorted(self._interp.get_output_details(), key=lambda d: d["name"])
        self._output_indices = [d["index"] for d in outs]

    def __call__(self, image: np.ndarray) -> list[np.ndarray]:
        """Run on one ``(h, w, 3)`` float32 image; outputs without the batch axis, in the
        model's order (``Identity``, ``Identity_1``, ...)."""
        self._interp.set_tensor(self._input_index, image[None])
        self._interp.invoke()
        return [self._interp.get_tensor(i)[0] for i in self._output_indices]


def warp_crop(image_rgb: np.ndarray, crop: HandCrop, out_size: int, lo: float = 0.0,
              hi: float = 1.0) -> np.ndarray:  # fmt: skip
    """The rotated square ``crop`` of ``image_rgb`` as an ``(out, out, 3)`` float32 image with
    values in [lo, hi]; outside the image is black (``lo``)."""
    import cv2

    patch = cv2.warpAffine(image_rgb, crop_affine(crop, out_size), (out_size, out_size),
                           flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)  # fmt: skip
    out = patch.astype(np.float32)
    out *= (hi - lo) / 255.0
    if lo:
        out += lo
    return out


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(np.asarray(x, dtype=np.float64), -100.0, 100.0)))


def _ssd_anchor_centers() -> np.ndarray:
    """``(2254, 2)`` normalized anchor centres of the pose detector (MediaPipe's
    SsdAnchorsCalculator with 5 layers, strides 8, 16, 32, 32, 32, fixed size; layers with the
    same stride share a grid and put 2 anchors per layer at each cell)."""
    centers = []
    for stride, per_cell in ((8, 2), (16, 2), (32, 6)):
        n = 224 // stride
        yy, xx = np.meshgrid((np.arange(n) + 0.5) / n, (np.arange(n) + 0.5) / n, indexing="ij")
        grid = np.stack([xx.ravel(), yy.ravel()], axis=1)
        centers.append(np.repeat(grid, per_cell, axis=0))
    return np.concatenate(centers)


def _weighted_nms(boxes: np.ndarray, kps: np.ndarray, scores: np.ndarray,
                  iou_threshold: float) -> list[tuple[np.ndarray, np.ndarray, float]]:  # fmt: skip
    """MediaPipe's weighted NMS: each cluster (IoU > threshold with its best member) is
    averaged with score weights and keeps the best score. boxes ``(N, 4)`` xyxy."""
    order = np.argsort(-scores)
    boxes, kps, scores = boxes[order], kps[order], scores[order]
    area = np.prod(np.clip(boxes[:, 2:] - boxes[:, :2], 0, None), axis=1)
    alive = np.ones(len(scores), dtype=bool)
    out = []
    for i in range(len(scores)):
        if not alive[i]:
            continue
        lt = np.maximum(boxes[i, :2], boxes[:, :2])
        rb = np.minimum(boxes[i, 2:], boxes[:, 2:])
        inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
        iou = inter / np.maximum(area[i] + area - inter, 1e-12)
        member = alive & (iou > iou_threshold)
        member[i] = True
        w = scores[member][:, None]
        out.append(((boxes[member] * w).sum(0) / w.sum(),
                    (kps[member] * w[:, :, None]).sum(0) / w.sum(), float(scores[i])))  # fmt: skip
        alive &= ~member
    return out


def _palm_anchor_centers() -> np.ndarray:
    """``(2016, 2)`` normalized anchor centres of the palm detector (MediaPipe's
    SsdAnchorsCalculator for palm_detection_full: 192 px input, strides 8, 16, 16, 16, fixed
    size; 2 anchors per cell on the 24x24 grid, 6 on the 12x12 grid)."""
    centers = []
    for stride, per_cell in ((8, 2), (16, 6)):
        n = 192 // stride
        yy, xx = np.meshgrid((np.arange(n) + 0.5) / n, (np.arange(n) + 0.5) / n, indexing="ij")
        grid = np.stack([xx.ravel(), yy.ravel()], axis=1)
        centers.append(np.repeat(grid, per_cell, axis=0))
    return np.concatenate(centers)


class MediapipePalmDetector:
    """MediaPipe's palm detector (full) on the whole frame or on one square region of it.

    Pre- and post-processing as MediaPipe's ``palm_detection_cpu`` graph: the region resampled
    to 192x192 RGB in [0, 1], SSD anchors, sigmoid scores, weighted NMS (IoU 0.3). Each
    detection has the palm box and 7 keypoints (wrist, index MCP, middle MCP, ring MCP, little
    MCP, thumb CMC, thumb MCP, in MediaPipe's order). It does not tell left from right: the
    hand model's handedness does (:class:`MediapipeHandKeypoints`).
    """

    def __init__(self, model: TFLiteModel, score_threshold: float = 0.5) -> None:
        self._model = model
        self._anchors = _palm_anchor_centers()
        self.score_threshold = score_threshold

    def detect(self, image_rgb: np.ndarray, region: HandCrop | None = None
               ) -> list[HandDetection]:  # fmt: skip
        """Hands in ``image_rgb`` (or in ``region`` of it), best first."""
        h, w = image_rgb.shape[:2]
        if region is None:
            region = HandCrop(np.array([(w - 1) / 2.0, (h - 1) / 2.0]), float(max(h, w)), 0.0)
        raw_boxes, raw_scores = self._model(warp_crop(image_rgb, region, 192))
        scores = _sigmoid(raw_scores[:, 0])
        keep = np.flatnonzero(scores >= self.score_threshold)
        if keep.size == 0:
            return []
        raw = raw_boxes[keep] / 192.0
        anchors = self._anchors[keep]
        centers = raw[:, :2] + anchors
        boxes = np.concatenate([centers - raw[:, 2:4] / 2, centers + raw[:, 2:4] / 2], axis=1)
        kps = raw[:, 4:18].reshape(-1, 7, 2) + anchors[:, None, :]
        out = []
        for box, kp, score in _weighted_nms(boxes, kps, scores[keep], NMS_IOU):
            corners = crop_to_image(box.reshape(2, 2) * 192.0 - 0.5, region, 192)
            kp_px = crop_to_image(kp * 192.0 - 0.5, region, 192)
            xyxy = np.concatenate([corners.min(0), corners.max(0)])
            out.append(HandDetection(box_xyxy=xyxy, score=score, keypoints_px=kp_px))
        return out


class MediapipePersonDetector:
    """BlazePose person detector on the whole frame, letterboxed to 224x224.

    The detector is anchored on the face and trained at close range: people whose face is only
    a few pixels wide in the letterboxed frame are missed (use the previous frame's body box).
    ``box_xyxy`` is the body circle's bounding square (centre: mid-hip keypoint, radius: its
    distance to the body-size keypoint); ``keypoints_px`` holds the four detector keypoints.
    """

    def __init__(self, model: TFLiteModel, score_threshold: float = 0.5,
                 max_people: int = 5) -> None:  # fmt: skip
        self._model = model
        self._anchors = _ssd_anchor_centers()
        self.score_threshold = score_threshold
        self.max_people = max_people

    def detect(self, image_rgb: np.ndarray) -> list[PersonDetection]:
        """People in ``image_rgb`` ``(H, W, 3)`` uint8 RGB, best first."""
        h, w = image_rgb.shape[:2]
        frame = HandCrop(np.array([(w - 1) / 2.0, (h - 1) / 2.0]), float(max(h, w)), 0.0)
        raw_boxes, raw_scores = self._model(warp_crop(image_rgb, frame, 224, -1.0, 1.0))
        scores = _sigmoid(raw_scores[:, 0])
        keep = np.flatnonzero(scores >= self.score_threshold)
        if keep.size == 0:
            return []
        raw = raw_boxes[keep] / 224.0
        anchors = self._anchors[keep]
        centers = raw[:, :2] + anchors
        boxes = np.concatenate([centers - raw[:, 2:4] / 2, centers + raw[:, 2:4] / 2], axis=1)
        kps = raw[:, 4:12].reshape(-1, 4, 2) + anchors[:, None, :]
        people = []
        for _box, kp, score in _weighted_nms(boxes, kps, scores[keep], NMS_IOU):
            kp_px = crop_to_image(kp * 224.0 - 0.5, frame, 224)
            radius = float(np.hypot(*(kp_px[1] - kp_px[0])))
            box = np.concatenate([kp_px[0] - radius, kp_px[0] + radius])
            people.append(PersonDetection(box_xyxy=box, score=score, keypoints_px=kp_px))
        return people[: self.max_people]


def body_roi(image_shape: tuple[int, ...], person: PersonDetection | None) -> HandCrop:
    """The rotated square the body model sees (a HandCrop is just a rotated square).

    With MediaPipe detector keypoints: centred on the mid-hip, side 1.25 x the body circle's
    diameter, rotated so the body points up. With a plain box: its centre, 1.25 x its larger
    side, upright. Without a person: the whole frame.
    """
    h, w = image_shape[:2]
    if person is None:
        return HandCrop(np.array([(w - 1) / 2.0, (h - 1) / 2.0]), float(max(h, w)), 0.0)
    kp = person.keypoints_px
    if kp is not None and len(kp) >= 2 and np.isfinite(kp[:2]).all():
        up = kp[1] - kp[0]
        size = 2.0 * float(np.hypot(*up)) * BODY_ROI_SCALE
        if size > 1.0:
            return HandCrop(np.array(kp[0], dtype=float), size, angle_from_direction(up))
    box = np.asarray(person.box_xyxy, dtype=float)
    side = float(max(box[2] - box[0], box[3] - box[1])) * BOX_ROI_SCALE
    return HandCrop((box[:2] + box[2:]) / 2.0, max(side, 1.0), 0.0)


class MediapipeBodyPose:
    """BlazePose full (33 keypoints, layout "mediapipe_pose33") on the person's ROI.

    Scores are the model's per-keypoint visibility (sigmoid of its logit); a pose whose
    presence score is below ``presence_threshold`` is not reported.
    """

    def __init__(self, model: TFLiteModel, presence_threshold: float = 0.5) -> None:
        self._model = model
        self.presence_threshold = presence_threshold

    def estimate(self, image_rgb: np.ndarray, box: PersonDetection | None) -> BodyPose | None:
        """Body keypoints of the person in ``box`` (the whole frame if None)."""
        roi = body_roi(image_rgb.shape, box)
        outputs = self._model(warp_crop(image_rgb, roi, 256))
        landmarks, presence = outputs[0].reshape(-1, 5), float(outputs[1].ravel()[0])
        if presence < self.presence_threshold:
            return None
        kp = crop_to_image(landmarks[:33, :2] - 0.5, roi, 256)
        scores = _sigmoid(landmarks[:33, 3])
        return BodyPose(keypoints_px=kp, scores=scores, layout="mediapipe_pose33")


class MediapipeHandKeypoints:
    """MediaPipe's hand landmark model (full) on a rotated 224x224 crop.

    The crop must have the fingers pointing up (the model was trained on such crops; the
    lead measured near-zero presence on fingers-down crops of some hands, though the messi5
    hands still score 0.93 upside down). Scores: see the module docstring.
    """

    def __init__(self, model: TFLiteModel, joint_threshold: float = 0.0) -> None:
        self._model = model
        self.joint_threshold = joint_threshold

    def estimate(self, image_rgb: np.ndarray, crop: HandCrop) -> HandKeypoints:
        """21 keypoints in image pixels for the hand in ``crop``."""
        outputs = self._model(warp_crop(image_rgb, crop, 224))
        uv = outputs[0].reshape(N_JOINTS, 3)[:, :2] - 0.5
        presence = float(outputs[1].ravel()[0])
        handedness = float(outputs[2].ravel()[0])
        outside = np.maximum(-uv, uv - 223.0).max(axis=1).clip(min=0.0) / 224.0
        scores = presence * np.clip(1.0 - outside / OUTSIDE_MARGIN, 0.0, 1.0)
        kp = crop_to_image(uv, crop, 224)
        drop = scores < self.joint_threshold
        kp[drop] = np.nan
        scores[drop] = 0.0
        return HandKeypoints(keypoints_px=kp, scores=scores, presence=presence,
                             handedness=handedness)


def make_mediapipe_backend(cfg: BackendConfig) -> Backend:
    """The mediapipe backend for ``cfg`` (see :class:`~mvhand.backends.registry.BackendConfig`).

    Raises:
        MissingDependencyError: mediapipe 0.10.21 or ai-edge-litert is missing.
        ModelError: a model file is missing or cannot be loaded.
    """
    if cfg.model_dir is not None:
        log.info("the mediapipe backend uses the models in its wheel; model_dir is ignored")
    threads = cfg.num_threads
    person = MediapipePersonDetector(TFLiteModel(model_path("person"), threads),
                                     cfg.person_threshold, cfg.max_people)  # fmt: skip
    body = MediapipeBodyPose(TFLiteModel(model_path("body"), threads), cfg.body_threshold)
    # every joint is reported; the pipeline's hands2d stage applies the joint threshold
    hand = MediapipeHandKeypoints(TFLiteModel(model_path("hand"), threads))
    palm = MediapipePalmDetector(TFLiteModel(model_path("palm"), threads))
    return Backend(person=person, body=body, hand=hand, name="mediapipe", palm=palm)
