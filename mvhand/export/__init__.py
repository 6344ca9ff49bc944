"""Exports of a run folder into the formats biomechanics and animation tools read.

``export_run(run_dir, ExportConfig(formats=("trc", "c3d", "bvh")))`` reads ``hands3d.npz`` (and
``hand_model.npz`` of a kinematic fit for BVH) and writes into ``run_dir/export``:

=========== =========================== ====================================================
format      file(s)                     read by
=========== =========================== ====================================================
``trc``     ``hands.trc``               OpenSim, Pose2Sim, Mokka (marker per hand joint)
``c3d``     ``hands.c3d``               ezc3d, c3d, Vicon/Qualisys tools, OpenSim, Mokka
``anipose`` ``hands_anipose.csv``       anipose's analysis (its ``pose-3d`` CSV columns)
``csv``     ``hands_long.csv``          pandas, R: one row per frame and marker
``bvh``     ``hand_<side>.bvh``         Blender, MotionBuilder (kinematic fit's rotations)
=========== =========================== ====================================================

Marker names are ``L_wrist``, ``R_index_tip`` (with ``person`` set: ``P1_L_wrist``). The
``[export]`` section of the pipeline config sets formats, units and the up axis.
"""

from mvhand.export.config import FORMATS, ExportConfig
from mvhand.export.run import export_run

__all__ = ["FORMATS", "ExportConfig", "export_run"]
