"""The OpenMMLab backend: an mmdet person detector, an mmpose whole-body model (COCO-WholeBody,
133 keypoints) and an mmpose hand model (21 keypoints), from configs and user checkpoints.

The paper's stack is the default: RTMDet-m (COCO, person class), RTMPose-m whole-body and the
RTMPose-m hand model (Hand5), each from the config shipped in the installed mmdet / mmpose
wheel and the checkpoint file its model index publishes, looked up in ``backend.model_dir``
(see :mod:`.loading`; mvhand never downloads). Any other detector, whole-body or hand config
and checkpoint can be named with ``backend.<person|body|hand>_config`` and ``_checkpoint``.

``backend.device`` places all three models (``cpu``, ``cuda``, ``cuda:N``); on the CPU torch
uses ``backend.num_threads`` threads. The estimators also offer ``estimate_batch`` (all hand
crops or all people of one frame in one forward pass).

Importing this package is cheap: torch, mmcv, mmengine, mmdet and mmpose are imported when the
backend is built.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from mvhand.backends.openmmlab.loading import (
    INSTALL_HINT,
    ModelSpec,
    load_checkpoint_file,
    load_weights,
    prepare_torchvision,
    resolve_checkpoint,
    resolve_config,
    strip_init,
)
from mvhand.backends.registry import Backend, BackendConfig
from mvhand.errors import ConfigError, MissingDependencyError, ModelError

log = logging.getLogger(__name__)

__all__ = ["check_device_name", "make_openmmlab_backend", "model_specs", "torch_device"]

_DEVICE = re.compile(r"cpu|cuda(?::(\d+))?")


def check_device_name(spec: str) -> int | None:
    """The CUDA index named by ``backend.device`` (None for the CPU; 0 for plain 'cuda').

    Raises:
        ConfigError: not 'cpu', 'cuda' or 'cuda:N'.
    """
    match = _DEVICE.fullmatch(spec)
    if match is None:
        raise ConfigError(f"'backend.device' = {spec!r}: must be 'cpu', 'cuda' or 'cuda:N'")
    return None if spec == "cpu" else int(match.group(1) or 0)


def torch_device(spec: str) -> Any:
    """The ``torch.device`` for ``backend.device``.

    Raises:
        ConfigError: a malformed name (checked before torch is imported), or a CUDA device
            this machine's torch does not have.
    """
    index = check_device_name(spec)
    import torch

    if index is not None:
        if not torch.cuda.is_available():
            raise ConfigError(f"'backend.device' = {spec!r} but torch {torch.__version__} "
                              f"sees no CUDA device here; use 'cpu' or a CUDA build of torch "
                              f"on a machine with a GPU")  # fmt: skip
        if index >= torch.cuda.device_count():
            raise ConfigError(f"'backend.device' = {spec!r} but there are only "
                              f"{torch.cuda.device_count()} CUDA devices")  # fmt: skip
    return torch.device(spec)


def model_specs(cfg: BackendConfig) -> dict[str, ModelSpec]:
    """The config and checkpoint files of the three models (checked to exist).

    Raises:
        ConfigError, ModelError, MissingDependencyError: see :mod:`.loading`.
    """
    specs = {}
    for role, package in (("person", "mmdet"), ("body", "mmpose"), ("hand", "mmpose")):
        config, pkg = resolve_config(getattr(cfg, f"{role}_config"), role, package)
        ckpt = resolve_checkpoint(getattr(cfg, f"{role}_checkpoint"), cfg.model_dir, config,
                                  role, pkg)  # fmt: skip
        specs[role] = ModelSpec(role, pkg, config, ckpt)
    return specs


def _import_stack() -> None:
    prepare_torchvision()
    try:
        import mmdet.utils
        import mmpose.utils
    except ImportError as exc:
        raise MissingDependencyError(f"the 'openmmlab' backend cannot import its packages "
                                     f"({exc}): {INSTALL_HINT}") from None  # fmt: skip
    mmdet.utils.register_all_modules(init_default_scope=False)
    mmpose.utils.register_all_modules(init_default_scope=False)


def build_model(spec: ModelSpec, device: Any) -> tuple[Any, Any, dict]:
    """Build one model from its config (no weight initialisation from files or URLs), load
    its checkpoint, move it to ``device``.

    Returns:
        ``(model, config, checkpoint meta)``.
    """
    from mmengine.config import Config, ConfigDict
    from mmengine.model import revert_sync_batchnorm

    from mvhand.backends.openmmlab.estimators import _scope

    try:
        cfg = Config.fromfile(str(spec.config))
    except Exception as exc:  # noqa: BLE001 - mmengine raises anything from a user's config
        raise ModelError(f"{spec.config}: cannot read the config ({exc})") from None
    model_cfg = ConfigDict(strip_init(cfg.model.to_dict()))  # models read it by attribute
    model_cfg["train_cfg"] = None
    registry = __import__(f"{spec.package}.registry", fromlist=["MODELS"]).MODELS
    try:
        with _scope(spec.package):
            model = registry.build(model_cfg)
    except Exception as exc:  # noqa: BLE001 - registry errors are KeyError/TypeError/...
        raise ModelError(f"{spec.config}: cannot build the {spec.role} model ({exc})") from None
    model = revert_sync_batchnorm(model)
    ckpt = load_checkpoint_file(spec.checkpoint)
    load_weights(model, ckpt, spec.checkpoint)
    model.to(device).eval()
    meta = ckpt.get("meta", {})
    return model, cfg, meta if isinstance(meta, dict) else {}


def _pose_meta(cfg: Any, meta: dict, spec: ModelSpec, expected: int) -> dict:
    from mmpose.apis.inference import dataset_meta_from_config

    dataset_meta = meta.get("dataset_meta") or dataset_meta_from_config(cfg, "train")
    if not dataset_meta:
        raise ModelError(f"{spec.config}: no keypoint metadata in the config or checkpoint")
    n = int(dataset_meta.get("num_keypoints", 0))
    if n != expected:
        raise ModelError(f"{spec.config}: the {spec.role} model has {n} keypoints; the "
                         f"openmmlab backend needs {expected}")  # fmt: skip
    return dataset_meta


def _person_label(cfg: Any, meta: dict, spec: ModelSpec) -> int:
    classes = (meta.get("dataset_meta") or {}).get("classes")
    if classes is None:
        try:
            classes = cfg.test_dataloader.dataset.metainfo["classes"]
        except (AttributeError, KeyError, TypeError):
            from mmdet.evaluation import get_classes

            classes = get_classes("coco")  # mmdet's default: the COCO dataset's 80 classes
    names = [str(c).lower() for c in classes]
    if "person" not in names:
        raise ModelError(f"{spec.config}: the detector has no 'person' class (it has "
                         f"{', '.join(names[:5])}...)")  # fmt: skip
    return names.index("person")


def make_openmmlab_backend(cfg: BackendConfig) -> Backend:
    """The openmmlab backend for ``cfg`` (see :class:`~mvhand.backends.registry.BackendConfig`).

    Raises:
        MissingDependencyError: torch / mmcv / mmengine / mmdet / mmpose missing.
        ConfigError: a config file is missing or the device does not exist.
        ModelError: a checkpoint is missing, does not fit its config, or a model is not the
            kind needed (133 whole-body keypoints, 21 hand keypoints, a person class).
    """
    from mvhand.backends.openmmlab.estimators import (
        HAND_K,
        WHOLEBODY_K,
        MmdetPersonDetector,
        MmposeBodyPose,
        MmposeHandKeypoints,
        TopdownModel,
    )

    check_device_name(cfg.device)
    specs = model_specs(cfg)
    try:
        import torch
    except ImportError:
        raise MissingDependencyError(f"the 'openmmlab' backend needs torch: {INSTALL_HINT}"
                                     ) from None  # fmt: skip
    device = torch_device(cfg.device)
    if device.type == "cpu":
        torch.set_num_threads(cfg.num_threads)
    _import_stack()
    built = {role: build_model(spec, device) for role, spec in specs.items()}
    det_model, det_cfg, det_meta = built["person"]
    person = MmdetPersonDetector(det_model, det_cfg, _person_label(det_cfg, det_meta,
                                 specs["person"]), str(specs["person"].config),
                                 cfg.person_threshold, cfg.max_people)  # fmt: skip
    poses = {}
    for role, k in (("body", WHOLEBODY_K), ("hand", HAND_K)):
        model, mcfg, meta = built[role]
        model.dataset_meta = _pose_meta(mcfg, meta, specs[role], k)
        poses[role] = TopdownModel(model, mcfg, model.dataset_meta, str(specs[role].config),
                                   from_boxes=role == "body")  # fmt: skip
    log.info("openmmlab backend on %s: %s", device,
             ", ".join(f"{r}={s.checkpoint.name}" for r, s in specs.items()))  # fmt: skip
    return Backend(person=person, body=MmposeBodyPose(poses["body"], cfg.body_threshold),
                   hand=MmposeHandKeypoints(poses["hand"]), name="openmmlab")  # fmt: skip
