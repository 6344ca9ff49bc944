"""``mvhand export``: a run folder's 3D hands to TRC, C3D, anipose CSV, a long CSV and BVH."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("export")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--format", "formats", default="trc,c3d,anipose,csv", show_default=True,
              metavar="F1,F2,...", help="Formats: trc, c3d, anipose, csv, bvh (bvh needs a "
              "kinematic fit in the run folder: `mvhand fit --model kinematic`).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None,
              help="Output folder (default RUN_DIR/export).")
@click.option("--units", type=click.Choice(["m", "cm", "mm"]), default="mm", show_default=True,
              help="Length units of the files.")
@click.option("--up", type=click.Choice(["z", "y"]), default="z", show_default=True,
              help="World up axis in the files: z keeps the calibration's frame; y turns a "
              "z-up world into y-up (OpenSim, Blender).")
@click.option("--person", default="", help="Person id prefixed to names (P1 -> P1_L_wrist).")
@click.option("--rate", "rate_hz", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Frame rate of the 3D frames if hands3d.npz does not hold it.")
def command(run_dir: Path, formats: str, out_dir: Path | None, units: str, up: str,
            person: str, rate_hz: float | None) -> None:  # fmt: skip
    """Export RUN_DIR's 3D hands (hands3d.npz; hand_model.npz for BVH) for other tools.

    Markers are named L_wrist, R_index_tip, ... (one per hand joint). TRC and C3D carry
    units and rate; C3D residuals are the reprojection errors in pixels.
    """
    from mvhand.export import ExportConfig, export_run

    names = tuple(f.strip().lower() for f in formats.split(",") if f.strip())
    cfg = ExportConfig(formats=names, units=units, up=up, person=person)
    if out_dir is not None:
        for path in export_run(run_dir, cfg, out_dir, rate_hz):
            click.echo(f"wrote {path}")
        return
    from mvhand.io.runfolder import RunFolder

    with RunFolder(run_dir).transaction(keep=True) as tx:  # the exports join the run's set
        tx.fresh_folder(cfg.folder)
        written = export_run(tx.dir, cfg, None, rate_hz)
    for path in written:
        click.echo(f"wrote {run_dir / path.relative_to(tx.dir)}")
