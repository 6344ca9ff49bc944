"""The openmmlab backend without its models: registry entry, config and checkpoint resolution,
error messages, device names, and that importing mvhand stays light. Runs without OpenMMLab
installed (the model tests are in test_backends_openmmlab_models.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mvhand.backends import registry
from mvhand.backends.openmmlab import loading, torch_device
from mvhand.errors import ConfigError, MissingDependencyError, ModelError

URL = "https://example.org/zoo/my-hand_210e-256x256-abc123_20230320.pth"


def _user_config(tmp_path: Path, with_index: bool = True) -> Path:
    """A user's config folder with a model-index metafile, like the wheels' configs."""
    folder = tmp_path / "configs" / "hand"
    folder.mkdir(parents=True)
    config = folder / "my-hand_256x256.py"
    config.write_text("model = dict(type='TopdownPoseEstimator')\n")
    if with_index:
        (folder / "index.yml").write_text(
            "Models:\n- Config: configs/other/my-hand_256x256.py\n  Weights: https://x/wrong.pth\n"
            f"- Config: configs/hand/my-hand_256x256.py\n  Weights: {URL}\n")
    return config


def test_registry_knows_openmmlab():
    assert "openmmlab" in registry.BACKENDS
    cfg = registry.BackendConfig(name="openmmlab")
    assert cfg.device == "cpu"
    assert cfg.person_config.startswith("mmdet::") and cfg.body_config.startswith("mmpose::")


def test_import_stays_light():
    """Importing mvhand, the registry and the backend package loads no torch or OpenMMLab."""
    code = ("import sys, mvhand, mvhand.backends.registry, mvhand.backends.openmmlab, "
            "mvhand.pipeline.run\n"
            "heavy = [m for m in ('torch', 'mmcv', 'mmengine', 'mmdet', 'mmpose', 'torchvision')"
            " if m in sys.modules]\nprint(','.join(heavy))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)  # fmt: skip
    assert out.stdout.strip() == ""


def test_published_checkpoint_is_read_from_the_model_index(tmp_path):
    config = _user_config(tmp_path)
    assert loading.published_checkpoint(config) == URL
    other = tmp_path / "lonely.py"
    other.write_text("")
    assert loading.published_checkpoint(other) is None


def test_missing_checkpoint_names_file_model_and_source(tmp_path):
    config = _user_config(tmp_path)
    with pytest.raises(ModelError) as err:
        loading.resolve_checkpoint(None, str(tmp_path / "models"), config, "hand", "mmpose")
    msg = str(err.value)
    assert "\n" not in msg
    assert str(tmp_path / "models" / "my-hand_210e-256x256-abc123_20230320.pth") in msg
    assert "hand model" in msg and config.name in msg and URL in msg
    assert "never downloads" in msg


def test_checkpoint_found_in_model_dir_or_by_path(tmp_path):
    config = _user_config(tmp_path)
    models = tmp_path / "models"
    models.mkdir()
    ckpt = models / "my-hand_210e-256x256-abc123_20230320.pth"
    ckpt.write_bytes(b"x")
    assert loading.resolve_checkpoint(None, str(models), config, "hand", "mmpose") == ckpt
    assert loading.resolve_checkpoint(ckpt.name, str(models), config, "hand", "mmpose") == ckpt
    assert loading.resolve_checkpoint(str(ckpt), None, config, "hand", "mmpose") == ckpt


def test_checkpoint_without_index_or_as_url_is_refused(tmp_path):
    config = _user_config(tmp_path, with_index=False)
    with pytest.raises(ModelError, match="backend.hand_checkpoint' is not set"):
        loading.resolve_checkpoint(None, str(tmp_path), config, "hand", "mmpose")
    with pytest.raises(ConfigError, match="never downloads"):
        loading.resolve_checkpoint(URL, str(tmp_path), config, "hand", "mmpose")
    with pytest.raises(ModelError, match="no published checkpoint|not found"):
        loading.resolve_checkpoint("nothere.pth", str(tmp_path), config, "hand", "mmpose")


def test_config_resolution_errors(tmp_path):
    with pytest.raises(ConfigError, match="backend.body_config"):
        loading.resolve_config(str(tmp_path / "none.py"), "body", "mmpose")
    with pytest.raises(ConfigError, match="prefix"):
        loading.resolve_config("torch::x.py", "body", "mmpose")
    config = _user_config(tmp_path)
    assert loading.resolve_config(str(config), "hand", "mmpose") == (config, "mmpose")


def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(loading.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingDependencyError, match="install_openmmlab.sh"):
        loading.resolve_config("mmpose::hand/x.py", "hand", "mmpose")


def test_strip_init_removes_every_weight_source():
    cfg = {"type": "A", "init_cfg": {"type": "Pretrained", "checkpoint": "https://x"},
           "backbone": {"pretrained": "https://y", "depth": 3,
                        "blocks": [{"init_cfg": 1, "k": 2}, {"k": 3}]}}  # fmt: skip
    assert loading.strip_init(cfg) == {"type": "A", "backbone": {"depth": 3, "blocks": [
        {"k": 2}, {"k": 3}]}}  # fmt: skip


@pytest.mark.parametrize("name", ["gpu", "cuda:x", "CUDA", "cuda:-1", ""])
def test_device_names_are_checked_before_torch(name):
    with pytest.raises(ConfigError, match="backend.device"):
        torch_device(name)
