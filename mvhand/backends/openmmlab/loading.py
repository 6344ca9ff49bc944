"""Finding configs and checkpoints, and building OpenMMLab models from them without a download.

A config is ``"mmpose::<path>"`` / ``"mmdet::<path>"`` (a file under the installed wheel's
``.mim/configs``, found without importing the package) or a file path. A checkpoint is a user
file: the ``backend.<role>_checkpoint`` path (absolute, or relative to ``backend.model_dir``),
or, when that is unset, the file name that the wheel's model index (the ``*.yml`` metafiles
beside the configs) publishes for the config, looked up in ``model_dir``.

Nothing here can reach the network: every ``init_cfg`` and ``pretrained`` entry of the model
config (OpenMMLab's configs point their backbones at published weights) is removed before the
model is built, and the checkpoint is read with ``torch.load`` from a file that exists.
"""

from __future__ import annotations

import importlib.util
import logging
import pickle
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mvhand.errors import ConfigError, MissingDependencyError, ModelError

log = logging.getLogger(__name__)

INSTALL_HINT = "bash scripts/install_openmmlab.sh (see the README: OpenMMLab backend)"
#: Where published checkpoints are listed when a config has no entry in the model index.
MODEL_ZOOS = {"mmpose": "mmpose's model zoo (the RTMPose project page)",
              "mmdet": "mmdetection's model zoo (the README beside the config)"}  # fmt: skip
#: The keys that make OpenMMLab initialise weights from a file or URL.
_INIT_KEYS = ("init_cfg", "pretrained")
#: Operator schemas torchvision's import needs even when its compiled operators do not load.
_TORCHVISION_SCHEMAS = ("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
                        "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
_torchvision_fragment: list = []  # keeps the torch.library fragment (and its schemas) alive


@dataclass(frozen=True)
class ModelSpec:
    """Where one model comes from.

    Attributes:
        role: "person", "body" or "hand" (names the config keys in messages).
        package: "mmdet" or "mmpose" (the registry scope the model is built in).
        config: the resolved config file.
        checkpoint: the resolved checkpoint file (exists).
    """

    role: str
    package: str
    config: Path
    checkpoint: Path


def package_dir(package: str) -> Path:
    """The installed package's folder, found without importing it.

    Raises:
        MissingDependencyError: the package is not installed.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise MissingDependencyError(
            f"the 'openmmlab' backend needs {package} (and torch, mmcv, mmengine): "
            f"{INSTALL_HINT}")  # fmt: skip
    return Path(spec.origin).parent


def prepare_torchvision() -> None:
    """Let ``import torchvision`` succeed where its compiled operators cannot load.

    The torchvision release matching torch 2.13 on PyPI is a CUDA build: beside the CPU torch
    its ``_C`` extension does not load, torchvision carries on without its operators, and then
    fails to register fake kernels for two of them ("operator torchvision::nms does not
    exist"). mmpose imports torchvision for its visualisers and mmdet for one box assigner;
    neither runs its operators here (mmcv has its own). Defining the two schemas first lets the
    import finish; calling such an operator still fails with "no kernel". Does nothing where
    torchvision is imported already, absent, or has working operators.
    """
    if "torchvision" in sys.modules or _torchvision_fragment:
        return
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return
    import torch

    lib = next(Path(spec.submodule_search_locations[0]).glob("_C*.so"), None)
    if lib is not None:
        try:
            torch.ops.load_library(str(lib))
            return
        except OSError:
            pass
    fragment = torch.library.Library("torchvision", "FRAGMENT")
    for schema in _TORCHVISION_SCHEMAS:
        fragment.define(schema)
    _torchvision_fragment.append(fragment)
    log.debug("torchvision's operators do not load beside torch %s; schemas defined",
              torch.__version__)


def resolve_config(spec: str, role: str, default_package: str) -> tuple[Path, str]:
    """The config file named by ``spec`` and the package whose registry builds it.

    Raises:
        ConfigError: the file does not exist (the message names the key and the file).
        MissingDependencyError: ``spec`` names a package that is not installed.
    """
    key = f"backend.{role}_config"
    if "::" in spec:
        package, rel = spec.split("::", 1)
        if package not in ("mmdet", "mmpose"):
            raise ConfigError(f"'{key}' = {spec!r}: the prefix must be 'mmdet::' or 'mmpose::'")
        path = package_dir(package) / ".mim" / "configs" / rel
    else:
        package, path = default_package, Path(spec).expanduser()
    if not path.is_file():
        raise ConfigError(f"'{key}': config file {path} not found")
    return path, package


def published_checkpoint(config: Path) -> str | None:
    """The checkpoint URL that the wheel's model index lists for ``config``, or None.

    The index is the ``*.yml`` metafiles in the config's folder, whose ``Models`` entries name
    their ``Config`` (a path ending in the config's folder and file name) and ``Weights``.
    """
    import yaml  # a dependency of mmengine

    tail = f"{config.parent.name}/{config.name}"
    for meta in sorted(config.parent.glob("*.yml")):
        try:
            doc = yaml.safe_load(meta.read_text())
        except (OSError, yaml.YAMLError):
            continue
        models = doc.get("Models", []) if isinstance(doc, dict) else []
        for entry in models if isinstance(models, list) else []:
            if isinstance(entry, dict) and str(entry.get("Config", "")).endswith(tail):
                weights = entry.get("Weights")
                if isinstance(weights, str) and weights:
                    return weights
    return None


def resolve_checkpoint(given: str | None, model_dir: str | None, config: Path, role: str,
                       package: str) -> Path:  # fmt: skip
    """The checkpoint file for one model; never downloads.

    Raises:
        ModelError: the file is not there; the one-line message names the file looked for,
            the model it is meant to be and where such checkpoints are published.
    """
    url = published_checkpoint(config)
    where = url if url else MODEL_ZOOS[package]
    if given is not None and "://" in given:
        raise ConfigError(f"'backend.{role}_checkpoint' = {given!r}: mvhand never downloads; "
                          f"download it yourself and give the local file")  # fmt: skip
    if given is None:
        if url is None:
            raise ModelError(f"'backend.{role}_checkpoint' is not set and {config} has no "
                             f"published checkpoint in the wheel's model index; set it to "
                             f"your checkpoint file")  # fmt: skip
        name = url.rsplit("/", 1)[-1]
        path = Path(model_dir).expanduser() / name if model_dir else Path(name)
    else:
        path = Path(given).expanduser()
        if not path.is_absolute() and model_dir and not path.is_file():
            path = Path(model_dir).expanduser() / path
    if not path.is_file():
        hint = "" if model_dir else " (backend.model_dir is not set)"
        raise ModelError(f"{path}: checkpoint of the {role} model ({config.name}) not found"
                         f"{hint}; mvhand never downloads: get it from {where} and put it "
                         f"there, or set backend.{role}_checkpoint")  # fmt: skip
    return path


def strip_init(node: Any) -> Any:
    """A copy of a (nested) config without the keys that load weights from files or URLs."""
    if isinstance(node, dict):
        return {k: strip_init(v) for k, v in node.items() if k not in _INIT_KEYS}
    if isinstance(node, (list, tuple)):
        return type(node)(strip_init(v) for v in node)
    return node


def load_checkpoint_file(path: Path) -> dict:
    """Read a checkpoint onto the CPU.

    ``weights_only`` first; OpenMMLab checkpoints keep numpy arrays in their ``meta``, which
    that refuses, and are then read in full, as mmengine's own loader does (a checkpoint is a
    pickle: load only files you trust).

    Raises:
        ModelError: the file is not a torch checkpoint.
    """
    import torch

    try:
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            log.info("%s holds Python objects besides weights; reading it in full", path)
            ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
        raise ModelError(f"{path}: cannot read the checkpoint ({exc})") from None
    if not isinstance(ckpt, dict):
        raise ModelError(f"{path}: not a checkpoint (a {type(ckpt).__name__}, not a dict)")
    return ckpt


def load_weights(model: Any, ckpt: dict, path: Path) -> None:
    """Copy the checkpoint's ``state_dict`` into ``model``.

    Raises:
        ModelError: the checkpoint lacks weights the model needs (a checkpoint of another
            model than the config describes).
    """
    state = ckpt.get("state_dict", ckpt)
    state = {k.removeprefix("module."): v for k, v in state.items()}
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatch
        lines = str(exc).strip().splitlines()
        first = lines[1].strip() if len(lines) > 1 else lines[0]
        raise ModelError(f"{path}: the checkpoint does not fit its config ({first})") from None
    if result.missing_keys:
        raise ModelError(f"{path}: the checkpoint does not fit its config: "
                         f"{len(result.missing_keys)} weights missing, e.g. "
                         f"{result.missing_keys[0]}")  # fmt: skip
    if result.unexpected_keys:
        log.info("%s: %d weights not used by the model", path, len(result.unexpected_keys))
