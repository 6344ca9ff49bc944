"""``mvhand fit``: fit MANO (user-supplied model files) or the kinematic hand to 3D hands."""

from __future__ import annotations

from pathlib import Path

import click

from mvhand.cli.common import set_option


@click.command("fit")
@click.option("--hands3d", "hands3d_path", required=True, type=click.Path(path_type=Path),
              help="3D hands from `mvhand triangulate` (OUT/hands3d.npz).")
@click.option("--keypoints", "kp_path", type=click.Path(path_type=Path), default=None,
              help="2D keypoints (NPZ) to refine against by reprojection (needs --calib).")
@click.option("--calib", "calib_path", type=click.Path(path_type=Path), default=None,
              help="Calibration of the 2D keypoints' cameras (anipose TOML).")
@click.option("--mano-dir", type=click.Path(path_type=Path), default=None,
              help="Folder with MANO_RIGHT.pkl and MANO_LEFT.pkl (licensed; from "
              "https://mano.is.tue.mpg.de). Without it the kinematic hand is fitted.")
@click.option("--model", type=click.Choice(["auto", "mano", "kinematic"]), default=None,
              help="Hand model (default auto: MANO when a model folder is given).")
@click.option("--mesh-frames", default=None, metavar="F1,F2,...",
              help="Frames to write as mesh files (MANO only).")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Output folder (created if needed).")
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
              help="TOML with the fit settings (the keys of a pipeline's [fit] table).")
@set_option
def command(hands3d_path: Path, kp_path: Path | None, calib_path: Path | None,
            mano_dir: Path | None, model: str | None, mesh_frames: str | None, out_dir: Path,
            config_path: Path | None, overrides: tuple[str, ...]) -> None:  # fmt: skip
    """Fit a hand model to every hand of a 3D result, over the whole sequence.

    Writes OUT/hand_model.npz (parameters, fitted joints, per-joint fit error),
    OUT/joint_angles.csv (degrees) and, with MANO, OUT/mesh_<hand>.npz (+ OBJ/PLY frames).
    """
    import dataclasses

    from mvhand.config import config_to_toml, load_config
    from mvhand.errors import InputError
    from mvhand.fit import FitConfig, run_fit, save_fit
    from mvhand.io.calib_convert import load_rig
    from mvhand.io.results import load_hands3d

    cfg = load_config(FitConfig, config_path, overrides)
    changes = {"mano_dir": str(mano_dir)} if mano_dir is not None else {}
    if model is not None:
        changes["model"] = model
    if mesh_frames:
        try:
            changes["mesh_frames"] = tuple(int(f) for f in mesh_frames.split(","))
        except ValueError:
            raise InputError(f"--mesh-frames expects comma-separated frame numbers, "
                             f"got {mesh_frames!r}") from None  # fmt: skip
    cfg = dataclasses.replace(cfg, **changes)
    hands3d = load_hands3d(hands3d_path)
    hands3d = _with_views(hands3d, kp_path, calib_path, hands3d_path)
    rig = load_rig(calib_path, hands3d.units) if calib_path is not None else None
    from mvhand.io.runfolder import RunFolder
    from mvhand.pipeline.fit import fit_inputs

    kp, rig = fit_inputs(hands3d, rig)
    result = run_fit(hands3d, cfg, kp, rig)
    from mvhand.pipeline.fit import fit_summary

    folder = RunFolder(out_dir)
    report = folder.report()
    with folder.transaction(keep=True) as tx:  # adds the fit to a run folder's set
        paths = save_fit(tx.dir, result, cfg.mesh_frames, cfg.mesh_format, config_to_toml(cfg))
        if report:  # a run folder: its report gains the fit's figures
            tx.write_report({**{k: v for k, v in report.items() if k != "run_id"},
                             "fit": fit_summary(result)})  # fmt: skip
    _summary(result)
    click.echo(f"wrote {', '.join(str(out_dir / p.name) for p in paths)}")


def _with_views(hands3d, kp_path: Path | None, calib_path: Path | None, h3_path: Path):
    """The 3D with the 2D evidence the fit's reprojection term must use: the triangulation's
    repaired 2D and inlier views of ``--keypoints`` (raw detections may have left and right
    swapped), else what ``hands3d.npz`` carries."""
    from mvhand.errors import InputError

    if kp_path is None and calib_path is None:
        return hands3d
    if calib_path is None:
        raise InputError("--keypoints needs --calib (2D refinement needs the cameras)")
    if kp_path is None:
        if hands3d.views is None:
            raise InputError("this hands3d file carries no 2D keypoints; give --keypoints too",
                             h3_path)  # fmt: skip
        return hands3d
    from mvhand.core.triangulate import triangulate
    from mvhand.io.calib_convert import load_rig
    from mvhand.io.keypoints import load_keypoints
    from mvhand.stages.reconstruct import match_cameras

    kp = load_keypoints(kp_path)
    if kp.n_frames != hands3d.n_frames or kp.hands != hands3d.hands:
        raise InputError(f"the 2D keypoints have {kp.n_frames} frames of hands {kp.hands}, the "
                         f"3D {hands3d.n_frames} of {hands3d.hands} ({h3_path}); give the 2D "
                         "the 3D was made from", kp_path)  # fmt: skip
    rig = match_cameras(kp, load_rig(calib_path, hands3d.units), kp_path)
    return hands3d.replace(views=triangulate(rig, kp).views)


def _summary(result) -> None:
    import numpy as np

    click.echo(f"model: {result.model}; units {result.units}", err=True)
    for name, fit in result.hands.items():
        click.echo(f"  {name}: {int(fit.fitted.sum())}/{result.n_frames} frames, mean joint "
                   f"error {np.nanmean(fit.fit_error):.3g} {result.units}, "
                   f"{result.timings_s[name]:.2f} s", err=True)  # fmt: skip
    if not result.hands:
        click.echo("  no hand had usable frames; nothing fitted", err=True)
