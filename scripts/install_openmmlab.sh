#!/usr/bin/env bash
# Install the OpenMMLab backend's packages (torch, mmengine, mmcv, mmdet, mmpose) into a venv
# that already has mvhand (`make install`), from this checkout: the pins are pyproject.toml's
# `openmmlab` extra. Idempotent: a second run checks and exits.
#
#   bash scripts/install_openmmlab.sh [VENV]        (default: .venv)
#
# Why a script and not only `pip install -e '.[openmmlab]'` (see ../shared/DEPENDENCIES.md):
# - torch must come first and pinned (2.13.0, the local CPU wheel); an unpinned requirement
#   pulls the newest CUDA build and gigabytes of packages.
# - mmcv 2.1.0 (mmdet 3.3.0 needs mmcv<2.2) exists only as a source distribution: it is
#   compiled against the installed torch (--no-build-isolation), with setuptools<82 (82 dropped
#   pkg_resources, which mmcv's build and mmengine need). 12-20 minutes on 2 cores; pip keeps
#   the built wheel in its cache (~/.cache/pip), so a second install on the same machine
#   takes seconds. MAX_JOBS (default 2) sets the compile's parallelism.
# - torchvision is pinned to the release matching torch (0.28.0); unpinned, mmpose pulls a newer
#   one and a new CUDA torch with it. That wheel is a CUDA build: on CPU torch its operators do
#   not load, which mvhand's backend works around when it imports it.
# - mmengine/mmcv/mmpose depend on opencv-python, mvhand on opencv-contrib-python; both write
#   the same cv2 folder. opencv-python is pinned to the same version and opencv-contrib-python
#   is reinstalled last, so cv2 keeps the contrib modules (trackers).
set -euo pipefail
VENV=${1:-.venv}
PY="$VENV/bin/python"
if [ ! -x "$PY" ]; then
  echo "install_openmmlab.sh: $PY not found; run 'make install' first (or pass the venv)" >&2
  exit 2
fi
# numpy<2 on every call: pip does not weigh the installed mvhand's own pins
PIP=("$PY" -m pip install --disable-pip-version-check -q "numpy<2")

REPO=$(cd "$(dirname "$0")/.." && pwd)
# torch and mmcv go in before the extra (keep these in step with pyproject's openmmlab extra)
TORCH=torch==2.13.0
MMCV=mmcv==2.1.0
OPENCV=4.11.0.86

check() {
  "$PY" - <<EOF
import importlib.metadata as md, sys
want = {"torch": "2.13.0", "torchvision": "0.28.0", "mmengine": "0.10.7", "mmcv": "2.1.0",
        "mmdet": "3.3.0", "mmpose": "1.3.2", "opencv-contrib-python": "$OPENCV"}
for name, version in want.items():
    try:
        have = md.version(name)
    except md.PackageNotFoundError:
        sys.exit(1)
    if have.split("+")[0] != version:
        sys.exit(1)
import cv2
sys.exit(0 if hasattr(cv2, "TrackerCSRT_create") else 1)
EOF
}

if check; then
  echo "install_openmmlab.sh: the OpenMMLab stack is already installed in $VENV"
  exit 0
fi

echo "install_openmmlab.sh: torch (CPU) and build tools"
"${PIP[@]}" "$TORCH" "setuptools>=68,<82" wheel ninja
echo "install_openmmlab.sh: mmcv (compiled from source unless pip's cache has the wheel)"
MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-2} "${PIP[@]}" --no-build-isolation "$TORCH" "$MMCV"
echo "install_openmmlab.sh: mmengine, mmdet, mmpose, torchvision (the openmmlab extra)"
"${PIP[@]}" "$TORCH" "$MMCV" -e "$REPO[openmmlab]"
# cv2 with the contrib modules again (opencv-python wrote over the shared cv2 folder)
"$PY" -m pip install --disable-pip-version-check -q --force-reinstall --no-deps \
  "opencv-contrib-python==$OPENCV"
"$PY" -m pip check --disable-pip-version-check || echo "install_openmmlab.sh: pip check reports the conflicts above" >&2
if ! check; then
  echo "install_openmmlab.sh: the stack did not install as pinned (see above)" >&2
  exit 1
fi
echo "install_openmmlab.sh: done"
