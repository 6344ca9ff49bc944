#!/usr/bin/env bash
# Generate a small synthetic 6-camera sample and triangulate it: the quickest end-to-end check.
set -euo pipefail
BIN=${BIN:-.venv/bin}
OUT=${OUT:-demo_out/synthetic}
"$BIN/mvhand" demo-data --out "$OUT/input" --cameras 6 --frames 120
"$BIN/mvhand" triangulate --calib "$OUT/input/calibration.toml" \
  --keypoints "$OUT/input/keypoints2d.npz" --out "$OUT/result"
"$BIN/python" - "$OUT" <<'PY'
import sys, numpy as np
out = sys.argv[1]
truth = np.load(f"{out}/input/truth3d.npz")["keypoints3d"]
pred = np.load(f"{out}/result/hands3d.npz")["keypoints3d"]
err = np.linalg.norm(pred - truth, axis=-1) * 1000
print(f"mean error against the synthetic ground truth: {np.nanmean(err):.1f} mm "
      f"({np.isfinite(err).mean() * 100:.0f} % of joints reconstructed)")
PY
