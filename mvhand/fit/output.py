"""Writing the fit's outputs (the I/O side of the fitting stage).

- ``hand_model.npz``: ``model``, ``units``, ``hands`` (fitted hand names), ``joints`` (21
  names), ``angle_names``; per hand ``<hand>_params`` ``(T, P)`` with ``<hand>_param_names``
  (absolute axis-angle rad, translation in m; MANO: ``global_orient``, ``transl``, then
  ``hand_pose`` (45, flat-hand convention) or PCA coefficients; kinematic: rotation and
  translation of the palm frame, then the 21 angles; the left kinematic hand is the mirror
  image through x = 0 of a right hand), ``<hand>_joints3d`` ``(T, 21, 3)`` input units,
  ``<hand>_fit_error`` ``(T, 21)`` input units, ``<hand>_fitted`` ``(T,)``,
  ``<hand>_angles_deg`` ``(T, 21)``, and the shape: MANO ``<hand>_betas``; kinematic
  ``<hand>_bone_lengths_m`` ``(20,)`` and ``<hand>_palm_m`` ``(6, 3)``.
- ``joint_angles.csv``: ``frame`` then ``<hand>_<angle>_deg`` columns; empty where not fitted.
- MANO only: ``mesh_<hand>.npz`` (``vertices`` ``(T, 778, 3)`` float32 input units, NaN where
  not fitted; ``faces`` ``(1538, 3)``), and ``mesh_<hand>_<frame>.obj|ply`` for chosen frames.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from mvhand.core.camera import UNIT_SCALE_M
from mvhand.core.skeleton import JOINT_NAMES
from mvhand.fit.fitting import FitResult
from mvhand.fit.kinematic import DOF_NAMES
from mvhand.io.atomic import save_npz_atomic, write_text_atomic


def joint_angles_csv(result: FitResult) -> str:
    """The joint-angle table as CSV text (degrees, one row per frame)."""
    cols = ["frame"]
    blocks = [np.arange(result.n_frames, dtype=float)[:, None]]
    for name, fit in result.hands.items():
        cols += [f"{name}_{a}_deg" for a in DOF_NAMES]
        blocks.append(np.degrees(fit.angles_rad))
    buf = io.StringIO()
    buf.write(",".join(cols) + "\n")
    np.savetxt(buf, np.hstack(blocks), delimiter=",", fmt="%.4g")
    return buf.getvalue().replace("nan", "")


def mesh_vertices(result: FitResult, hand: str) -> np.ndarray:
    """MANO vertices ``(T, 778, 3)`` of ``hand`` in the input's units (NaN where not fitted)."""
    from mvhand.fit.models import ManoFitModel

    fit = result.hands[hand]
    n_pca = sum(n.startswith("pca_") for n in fit.param_names)
    model = ManoFitModel(result.mano[hand], n_pca)  # params are absolute: ref = identity
    out = np.full((result.n_frames, 778, 3), np.nan)
    x = fit.params[fit.fitted]
    if len(x):
        out[fit.fitted] = model.vertices(x, fit.shared["betas"])[1]
    return out / UNIT_SCALE_M[result.units]


def _obj(vertices: np.ndarray, faces: np.ndarray) -> str:
    lines = [f"v {x:.6g} {y:.6g} {z:.6g}" for x, y, z in vertices]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces]
    return "\n".join(lines) + "\n"


def _ply(vertices: np.ndarray, faces: np.ndarray) -> str:
    head = ["ply", "format ascii 1.0", f"element vertex {len(vertices)}", "property float x",
            "property float y", "property float z", f"element face {len(faces)}",
            "property list uchar int vertex_indices", "end_header"]  # fmt: skip
    lines = head + [f"{x:.6g} {y:.6g} {z:.6g}" for x, y, z in vertices]
    lines += [f"3 {a} {b} {c}" for a, b, c in faces]
    return "\n".join(lines) + "\n"


def save_fit(out_dir: str | Path, result: FitResult, mesh_frames: tuple[int, ...] = (),
             mesh_format: str = "obj", config_toml: str | None = None) -> list[Path]:  # fmt: skip
    """Write ``hand_model.npz``, ``joint_angles.csv`` and (MANO) meshes; returns the paths."""
    out = Path(out_dir)
    arrays = {"model": np.array(result.model), "units": np.array(result.units),
              "hands": np.array(list(result.hands)), "joints": np.array(JOINT_NAMES),
              "angle_names": np.array(DOF_NAMES)}  # fmt: skip
    for name, fit in result.hands.items():
        arrays.update({f"{name}_params": fit.params, f"{name}_param_names": np.array(
            fit.param_names), f"{name}_joints3d": fit.joints3d, f"{name}_fit_error":
            fit.fit_error, f"{name}_fitted": fit.fitted, f"{name}_angles_deg":
            np.degrees(fit.angles_rad)})  # fmt: skip
        arrays.update({f"{name}_{k}": v for k, v in fit.shared.items()})
    from mvhand.io.runfolder import NAMES

    written = [out / NAMES["hand_model"], out / NAMES["joint_angles"]]
    save_npz_atomic(written[0], **arrays)
    write_text_atomic(written[1], joint_angles_csv(result))
    if config_toml is not None:
        written.append(out / NAMES["fit_config"])
        write_text_atomic(written[-1], config_toml)
    if result.model == "mano":
        written += _save_meshes(out, result, mesh_frames, mesh_format)
    return written


def _save_meshes(out: Path, result: FitResult, frames: tuple[int, ...], fmt: str) -> list[Path]:
    written = []
    for name in result.hands:
        verts = mesh_vertices(result, name)
        faces = result.mano[name].faces
        path = out / f"mesh_{name}.npz"
        save_npz_atomic(path, vertices=verts.astype(np.float32), faces=faces.astype(np.int32))
        written.append(path)
        for f in frames:
            if 0 <= f < result.n_frames and np.isfinite(verts[f]).all():
                path = out / f"mesh_{name}_{f:06d}.{fmt}"
                write_text_atomic(path, (_obj if fmt == "obj" else _ply)(verts[f], faces))
                written.append(path)
    return written
