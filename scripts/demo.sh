#!/usr/bin/env bash
# The main job end to end on real multi-camera video: `mvhand run` on the Pose2Sim demo
# (4 cameras x 100 frames, Qualisys calibration converted by `mvhand calib convert`).
# Environment: BIN (default .venv/bin), DATA (the demo folder), OUT (output folder).
set -euo pipefail
BIN=${BIN:-.venv/bin}
DATA=${DATA:-../shared/data/pose2sim_single}
OUT=${OUT:-demo_out/pose2sim}
if [ ! -d "$DATA/videos" ] || [ ! -f "$DATA/Calib.qca.txt" ]; then
  cat <<MSG
The demo recording is not on this machine (looked for $DATA/videos and $DATA/Calib.qca.txt).
To run mvhand on your own recordings:
  1. Put one video per camera in a folder, each file named after its camera in the
     calibration (cam01.mp4, cam02.mp4, ...), or map names with [video] mapping in a pipeline.
  2. Bring the calibration as anipose TOML, or convert yours (Qualisys QCA, OpenCV/EasyMocap
     YAML, CMU Panoptic JSON):   $BIN/mvhand calib convert YOUR_CALIBRATION cams.toml
  3. Run:   $BIN/mvhand run --calib cams.toml path/to/videos --out out
     (--frames A:B for a part, --set key=value to tune; see pipelines/default.toml).
Or set DATA=/path/to/pose2sim_single and run this script again.
MSG
  exit 0
fi
mkdir -p "$OUT"
"$BIN/mvhand" calib convert "$DATA/Calib.qca.txt" "$OUT/cams.toml" --units mm
start=$(date +%s)
"$BIN/mvhand" run --calib "$OUT/cams.toml" "$DATA/videos" --out "$OUT" --set fit.enabled=true "$@"
end=$(date +%s)
"$BIN/python" - "$OUT" "$((end - start))" <<'PY'
import json, sys
out, wall = sys.argv[1], sys.argv[2]
rep = json.load(open(f"{out}/report.json"))
rec = rep["reconstruction"]
errs = ", ".join(f"{h} {v['median_reprojection_error_px']:.1f} px"
                 for h, v in rec["hands"].items() if v["median_reprojection_error_px"])
print(f"Pose2Sim demo: {rec['frames_with_both_hands']}/{rec['frames']} frames with both hands "
      f"in 3D; median reprojection error {errs}; wall time {wall} s. Outputs in {out}/")
PY
cat <<MSG
Next: look at $OUT/summary.png (quality at a glance), $OUT/joint_angles.csv (fitted kinematic
hand, degrees), and the result in 3D:
  $BIN/mvhand render $OUT --out $OUT/orbit.mp4          (headless; or: $BIN/mvhand view $OUT)
  $BIN/mvhand overlay $OUT --videos $DATA/videos        (2D evidence on every video)
MSG
