"""``mvhand calib``: convert calibrations between formats and inspect a rig."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

_UNITS = click.Choice(["m", "cm", "mm"])
_IN_FORMATS = ("auto", "anipose", "qca", "opencv", "panoptic", "caliscope", "kinect",
               "matrix4x4")  # fmt: skip


def _input_options(func: Any) -> Any:
    """The options that say how to read a calibration (shared by convert and show)."""
    func = click.option(
        "--camera-type", default=None, metavar="TYPE",
        help="Panoptic: keep the cameras of this type (hd, vga, kinect-color); Azure Kinect: "
        "the colour mode (720p, 1080p (default), 1440p, 1536p, 2160p, 3072p).",
    )(func)  # fmt: skip
    func = click.option(
        "--in-units", type=_UNITS, default=None,
        help="Units of the input's translations when the file does not record them (anipose "
        "TOML without [metadata] units, OpenCV YAML without 'units'); default m. QCA and "
        "matrix4x4 are always mm, Panoptic cm, caliscope and Azure Kinect m.",
    )(func)  # fmt: skip
    func = click.option(
        "--from", "fmt", type=click.Choice(_IN_FORMATS), default="auto", show_default=True,
        help="Input format; auto detects it from the name and content.",
    )(func)  # fmt: skip
    return func


def _load(path: Path, fmt: str, units: str | None, in_units: str | None,
          camera_type: str | None, cameras: str | None = None):  # fmt: skip
    from mvhand.errors import CalibrationError
    from mvhand.io.calib_convert import load_any_calibration

    rig = load_any_calibration(path, fmt, units, in_units, camera_type)
    if cameras:
        names = [n.strip() for n in cameras.split(",") if n.strip()]
        try:
            rig = rig.subset(names)
        except CalibrationError as exc:
            raise CalibrationError(str(exc), path) from None
    return rig


def _fmt_vec(v: Any, digits: int = 3) -> str:
    return "(" + ", ".join(f"{x:.{digits}f}" for x in v) + ")"


def print_rig(rig: Any, title: str) -> list[str]:
    """Print the per-camera table and the rig's warnings; return the warnings."""
    from rich.console import Console
    from rich.table import Table

    from mvhand.io.calib_convert import attention_point, rig_report

    rows, warnings = rig_report(rig)
    point, _ = attention_point(rig)
    table = Table(title=title)
    for col in ("camera", "size px", "focal px", f"position {rig.units}", "viewing direction",
                f"to centre {rig.units}", "off-axis deg", "centre at px"):  # fmt: skip
        table.add_column(col, justify="left" if col == "camera" else "right", no_wrap=True)
    digits = {"m": 3, "cm": 1, "mm": 0}[rig.units]
    for r in rows:
        u, v = r["centre_px"]
        at = "behind" if not (u == u) else f"({u:.0f}, {v:.0f})"  # NaN check
        table.add_row(r["name"], f"{r['size_px'][0]}x{r['size_px'][1]}", f"{r['focal_px']:.1f}",
                      _fmt_vec(r["center"], digits), _fmt_vec(r["view_dir"], 2),
                      f"{r['distance']:.{digits}f}",
                      f"{r['off_axis_deg']:.1f}", at)  # fmt: skip
    console = Console()
    if console.width < 140:  # the table needs room; a narrow or piped output wraps instead
        console = Console(width=140)
    console.print(table)
    console.print(f"scene centre (point nearest all optical axes): "
                  f"{_fmt_vec(point, digits)} {rig.units}")
    for w in warnings:
        console.print(f"[yellow]warning:[/yellow] {w}")
    if not warnings:
        console.print("[green]no problems found[/green]")
    return warnings


@click.group("calib")
def command() -> None:
    """Calibrate a rig (boards, people), convert calibrations to anipose TOML, inspect them."""


@command.command("convert")
@click.argument("src", type=click.Path(path_type=Path))
@click.argument("dst", type=click.Path(path_type=Path))
@_input_options
@click.option("--units", type=_UNITS, default="m", show_default=True,
              help="Units of the output's translations (recorded in the output).")
@click.option("--to", "out_fmt", type=click.Choice(["auto", "anipose", "opencv"]),
              default="auto", show_default=True,
              help="Output format; auto: .toml -> anipose, .yml/.yaml -> one OpenCV YAML file, "
              "a folder -> EasyMocap intri.yml + extri.yml.")  # fmt: skip
@click.option("--cameras", default=None, metavar="NAMES",
              help="Keep only these cameras, comma-separated, in this order.")
@click.option("-q", "--quiet", is_flag=True, help="Do not print the camera table.")
def convert(src: Path, dst: Path, fmt: str, in_units: str | None, camera_type: str | None,
            units: str, out_fmt: str, cameras: str | None, quiet: bool) -> None:  # fmt: skip
    """Convert calibration SRC (anipose TOML, Qualisys QCA, OpenCV/EasyMocap YAML, CMU Panoptic
    JSON, caliscope/FreeMoCap camera_array.toml, Azure Kinect raw JSON (colour camera), or a
    matrix4x4 camera table: per camera name, size, K, distortion and a camera-to-reference 4x4
    in mm, as JSON or CSV, see mvhand/io/calib_formats.py) to DST (anipose TOML by default,
    with [metadata] units)."""
    from mvhand.io.calib_convert import detect_format, save_any_calibration

    src_fmt = detect_format(src) if fmt == "auto" else fmt
    rig = _load(src, src_fmt, units, in_units, camera_type, cameras)
    meta = {"source": src.name, "source_format": src_fmt}
    written = save_any_calibration(dst, rig, out_fmt, meta)
    if not quiet:
        print_rig(rig, f"{src.name} ({src_fmt}) -> {dst.name}")
    click.echo(f"wrote {', '.join(str(p) for p in written)}: {len(rig)} cameras, "
               f"units {rig.units}")  # fmt: skip


@command.command("show")
@click.argument("cal", type=click.Path(path_type=Path))
@_input_options
@click.option("--units", type=_UNITS, default=None,
              help="Show translations in these units (default: the file's).")
@click.option("--check", is_flag=True,
              help="Exit with status 1 when there are warnings (for scripts).")
def show(cal: Path, fmt: str, in_units: str | None, camera_type: str | None,
         units: str | None, check: bool) -> None:  # fmt: skip
    """Print each camera of CAL (size, focal, position, viewing direction, distance to the
    scene centre) and warn about suspicious rigs."""
    rig = _load(cal, fmt, units, in_units, camera_type)
    warnings = print_rig(rig, f"{cal.name}: {len(rig)} cameras, units {rig.units}")
    if check and warnings:
        raise SystemExit(1)


# ---- calibrating a rig (mvhand.calibrate) --------------------------------------------------

_BOARD = click.option("--board", "board_path", type=click.Path(path_type=Path), required=True,
                      help="Board definition TOML (see calibration/README.md); caliscope's "
                      "charuco.toml is read as it is.")  # fmt: skip
_STEP = click.option("--every", "step", type=click.IntRange(min=1), default=1, show_default=True,
                     help="Look at every N-th video frame only.")
_MAX_FRAMES = click.option("--max-frames", type=click.IntRange(min=1), default=None,
                           help="Look at the first N frames of each video only.")
_MODEL = click.option("--model", type=click.Choice(["pinhole", "fisheye"]), default="pinhole",
                      show_default=True, help="Lens model.")


def _board(path: Path):
    from mvhand.calibrate.boards import load_board

    return load_board(path)


def _intrinsics_cfg(model: str, max_views: int):
    from mvhand.calibrate.intrinsics import IntrinsicsConfig

    return IntrinsicsConfig(model=model, max_views=max_views)


def _print_intrinsics(results) -> None:
    from mvhand.calibrate.intrinsics import coverage_fraction

    for r in results:
        K = r.camera.K
        click.echo(f"{r.camera.name}: RMS {r.rms_px:.3f} px on {len(r.used)} views (board in "
                   f"{r.n_candidates}), f = {K[0, 0]:.1f}/{K[1, 1]:.1f} px, c = ({K[0, 2]:.1f}, "
                   f"{K[1, 2]:.1f}), coverage {100 * coverage_fraction(r):.0f}%"
                   + (f", dropped views {r.dropped.tolist()}" if len(r.dropped) else ""))
        if coverage_fraction(r) < 0.25:
            click.secho(f"warning: {r.camera.name}: the board covered only "
                        f"{100 * coverage_fraction(r):.0f}% of the image; the distortion is "
                        "extrapolated elsewhere (show the board near the edges and corners too)",
                        fg="yellow")  # fmt: skip


def _print_extrinsics(ex) -> None:
    for n, rms, v, o in zip(ex.rig.names, ex.rms_px, ex.views, ex.offsets, strict=True):
        shift = f", frame offset {o:+d}" if o else ""
        click.echo(f"{n}: board RMS {rms:.3f} px on {v} views{shift}")


@command.command("intrinsics")
@click.argument("sources", nargs=-1, required=True, type=click.Path(path_type=Path))
@_BOARD
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output TOML.")
@_MODEL
@click.option("--max-views", type=click.IntRange(min=4), default=40, show_default=True,
              help="Views kept per camera by the frame selection.")
@click.option("--coverage", "coverage_dir", type=click.Path(path_type=Path), default=None,
              help="Folder for <camera>_coverage.png (default: next to --out).")
@_STEP
@_MAX_FRAMES
def intrinsics(sources: tuple[Path, ...], board_path: Path, out: Path, model: str,
               max_views: int, coverage_dir: Path | None, step: int,
               max_frames: int | None) -> None:  # fmt: skip
    """Intrinsics per camera from board images: SOURCES are videos, image folders, or a folder
    of videos (one camera each, named after the file or folder)."""
    from mvhand.calibrate import workflow as wf
    from mvhand.io.calibration import save_calibration

    board = _board(board_path)
    srcs = wf.expand_sources(sources)
    dets = wf.detect_all(srcs, board, step, stop=max_frames)
    cov = coverage_dir if coverage_dir is not None else out.parent
    results = wf.run_intrinsics(dets, board, _intrinsics_cfg(model, max_views), cov)
    _print_intrinsics(results)
    rig = _rig([r.camera for r in results])
    save_calibration(out, rig, wf.intrinsics_metadata(results, board))
    click.echo(f"wrote {out}: {len(rig)} cameras (intrinsics only); coverage pictures in {cov}")


def _rig(cameras):
    from mvhand.core.camera import Rig

    return Rig(tuple(cameras), "m")


@command.command("extrinsics")
@click.argument("videos", nargs=-1, required=True, type=click.Path(path_type=Path))
@_BOARD
@click.option("--intrinsics", "intr_path", type=click.Path(path_type=Path), required=True,
              help="Calibration with the cameras' intrinsics (e.g. from calib intrinsics).")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output TOML.")
@click.option("--refine-intrinsics", is_flag=True,
              help="Also adjust the intrinsics in the bundle adjustment.")
@click.option("--max-offset", type=click.IntRange(min=0), default=2, show_default=True,
              help="Look for per-camera frame offsets up to this many frames (0: trust the sync).")
@_STEP
@_MAX_FRAMES
def extrinsics(videos: tuple[Path, ...], board_path: Path, intr_path: Path, out: Path,
               refine_intrinsics: bool, max_offset: int, step: int,
               max_frames: int | None) -> None:  # fmt: skip
    """Camera poses from a board seen in synchronized VIDEOS (files or a folder; matched to
    the intrinsics' cameras by file name)."""
    from mvhand.calibrate import workflow as wf
    from mvhand.io.calib_convert import load_any_calibration
    from mvhand.io.calibration import save_calibration

    board = _board(board_path)
    intr = load_any_calibration(intr_path)
    srcs = wf.expand_sources(videos)
    wf.check_lengths(srcs)
    dets = wf.detect_all(srcs, board, step, stop=max_frames)
    ex = wf.run_extrinsics(intr, dets, board, refine_intrinsics, max_offset)
    _print_extrinsics(ex)
    save_calibration(out, ex.rig, wf.extrinsics_metadata(ex, board))
    click.echo(f"wrote {out}: {len(ex.rig)} cameras, units m")


@command.command("calibrate")
@click.argument("videos", nargs=-1, required=True, type=click.Path(path_type=Path))
@_BOARD
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output TOML.")
@_MODEL
@click.option("--max-views", type=click.IntRange(min=4), default=40, show_default=True,
              help="Views kept per camera for the intrinsics.")
@click.option("--refine-intrinsics/--fixed-intrinsics", default=True, show_default=True,
              help="Adjust the intrinsics in the bundle adjustment too.")
@click.option("--max-offset", type=click.IntRange(min=0), default=2, show_default=True,
              help="Look for per-camera frame offsets up to this many frames (0: trust the sync).")
@click.option("--coverage", "coverage_dir", type=click.Path(path_type=Path), default=None,
              help="Folder for <camera>_coverage.png (default: next to --out).")
@_STEP
@_MAX_FRAMES
def calibrate(videos: tuple[Path, ...], board_path: Path, out: Path, model: str, max_views: int,
              refine_intrinsics: bool, max_offset: int, coverage_dir: Path | None, step: int,
              max_frames: int | None) -> None:  # fmt: skip
    """Intrinsics and extrinsics from one set of synchronized board VIDEOS."""
    from mvhand.calibrate import workflow as wf
    from mvhand.io.calibration import save_calibration

    board = _board(board_path)
    srcs = wf.expand_sources(videos)
    wf.check_lengths(srcs)
    dets = wf.detect_all(srcs, board, step, stop=max_frames)
    cov = coverage_dir if coverage_dir is not None else out.parent
    results = wf.run_intrinsics(dets, board, _intrinsics_cfg(model, max_views), cov)
    _print_intrinsics(results)
    ex = wf.run_extrinsics(_rig([r.camera for r in results]), dets, board, refine_intrinsics,
                           max_offset)  # fmt: skip
    _print_extrinsics(ex)
    meta = {**wf.intrinsics_metadata(results, board), **wf.extrinsics_metadata(ex, board)}
    meta["source"] = "mvhand calib calibrate"
    save_calibration(out, ex.rig, meta)
    click.echo(f"wrote {out}: {len(ex.rig)} cameras, units m")


def _synced_board(rig, videos, board, step, max_frames, offsets=None):
    """Detections in videos matched to the rig's cameras: corners (C, F, N, 2)."""
    from mvhand.calibrate import workflow as wf
    from mvhand.calibrate.extrinsics import shift_frames, synced_corners
    from mvhand.errors import InputError

    srcs = wf.expand_sources(videos)
    by_name = {wf.camera_name(s): s for s in srcs}
    missing = [n for n in rig.names if n not in by_name]
    if missing:
        raise InputError(f"no video for camera(s) {', '.join(missing)} (videos are matched by "
                         f"file name: {', '.join(sorted(by_name))})")  # fmt: skip
    dets = [wf.detect_any(by_name[n], board, step, 6, max_frames) for n in rig.names]
    corners = synced_corners(dets)
    return shift_frames(corners, offsets) if offsets else corners


def _file_offsets(path: Path, rig) -> list[int] | None:
    import tomllib

    try:
        meta = tomllib.loads(path.read_text(encoding="utf-8")).get("metadata", {})
    except (OSError, tomllib.TOMLDecodeError):
        return None
    off = meta.get("frame_offsets") if isinstance(meta, dict) else None
    return [int(off.get(n, 0)) for n in rig.names] if isinstance(off, dict) else None


@command.command("check")
@click.argument("cal", type=click.Path(path_type=Path))
@click.argument("videos", nargs=-1, required=True, type=click.Path(path_type=Path))
@_BOARD
@click.option("--figure", type=click.Path(path_type=Path), default=None,
              help="PNG figure (default: <CAL stem>_check.png next to CAL).")
@_STEP
@_MAX_FRAMES
@click.option("--strict", is_flag=True, help="Exit with status 1 when there are warnings.")
def check(cal: Path, videos: tuple[Path, ...], board_path: Path, figure: Path | None, step: int,
          max_frames: int | None, strict: bool) -> None:  # fmt: skip
    """Check calibration CAL against board VIDEOS: per-camera reprojection of the triangulated
    board, its square size against the known one, the camera layout, and a figure."""
    from mvhand.calibrate.check import check_rig, save_figure
    from mvhand.io.calib_convert import load_any_calibration

    board = _board(board_path)
    rig = load_any_calibration(cal)
    corners = _synced_board(rig, videos, board, step, max_frames, _file_offsets(cal, rig))
    rep = check_rig(rig, board, corners)
    layout_warnings = print_rig(rig, f"{cal.name}: {len(rig)} cameras, units {rig.units}")
    for n, rms, med, k, loo in zip(rep.names, rep.rms_px, rep.median_px, rep.n_obs,
                                   rep.loo_rms_px, strict=True):  # fmt: skip
        click.echo(f"{n}: board reprojection RMS {rms:.3f} px, median {med:.3f} px "
                   f"({k} corners); from the other cameras {loo:.3f} px")
    click.echo(f"square size: {1000 * rep.square_m:.2f} mm triangulated vs "
               f"{1000 * board.square_size_m:.2f} mm ({100 * rep.square_error:+.2f}%, spread "
               f"{100 * rep.square_spread:.2f}%)")
    for w in rep.warnings:
        click.secho(f"warning: {w}", fg="yellow")
    fig = figure if figure is not None else cal.with_name(cal.stem + "_check.png")
    save_figure(fig, rig, rep)
    click.echo(f"figure: {fig}")
    if strict and (rep.warnings or layout_warnings):
        raise SystemExit(1)


def _point(text: str) -> list[float]:
    from mvhand.errors import ConfigError

    try:
        vals = [float(v) for v in text.split(",")]
    except ValueError:
        vals = []
    if len(vals) != 3:
        raise ConfigError(f"a point is three comma-separated numbers 'x,y,z', got {text!r}")
    return vals


@command.command("set-origin")
@click.argument("cal", type=click.Path(path_type=Path))
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--board", "board_path", type=click.Path(path_type=Path), default=None,
              help="A board lying on the floor or table: the world origin goes to its corner.")
@click.option("--videos", type=click.Path(path_type=Path), multiple=True,
              help="With --board: synchronized videos (or a folder) in which it is seen.")
@click.option("--frame", type=click.IntRange(min=0), default=None,
              help="With --board: the frame to use (default: the one where most corners "
              "triangulate).")
@click.option("--corner", type=click.IntRange(min=0), default=0, show_default=True,
              help="With --board: the corner that becomes the origin.")
@click.option("--points", default=None, metavar="O;X;P",
              help="Three points in CAL's world and units, 'x,y,z;x,y,z;x,y,z': the origin, a "
              "point on the new +x axis, a point in the new xy plane (floor).")
@click.option("--up", default=None, metavar="AXIS",
              help="Only rotate: CAL's axis that points up becomes +z (e.g. -y for a world "
              "that is a camera's frame).")
def set_origin(cal: Path, out: Path, board_path: Path | None, videos: tuple[Path, ...],
               frame: int | None, corner: int, points: str | None, up: str | None) -> None:
    """Move the world frame of CAL (z up, so that worlds are not upside down) and write OUT."""
    from mvhand.calibrate import origin as og
    from mvhand.errors import ConfigError
    from mvhand.io.calib_convert import load_any_calibration
    from mvhand.io.calibration import save_calibration

    chosen = [x for x in (board_path, points, up) if x]
    if len(chosen) != 1:
        raise ConfigError("give exactly one of --board (with --videos), --points or --up")
    rig = load_any_calibration(cal)
    if up:
        new, how = og.set_up_axis(rig, up), f"rotated: {up} of the old world is +z"
    elif points:
        p = [_point(t) for t in points.split(";")]
        if len(p) != 3:
            raise ConfigError("--points takes three points separated by ';'")
        new, how = og.set_origin_points(rig, *p), f"from points {points} (z up)"
    else:
        new, how = _origin_from_board(rig, Path(board_path), videos, frame, corner)
    meta = {"source": f"mvhand calib set-origin from {cal.name}", "world": how}
    save_calibration(out, new, meta)
    print_rig(new, f"{out.name}: {len(new)} cameras, units {new.units}")
    click.echo(f"wrote {out}: world {how}")


def _origin_from_board(rig, board_path: Path, videos, frame, corner):
    import numpy as np

    from mvhand.calibrate import origin as og
    from mvhand.calibrate.workflow import triangulate_corners
    from mvhand.errors import ConfigError, InputError

    if not videos:
        raise ConfigError("--board needs --videos in which the board is seen")
    board = _board(board_path)
    corners = _synced_board(rig, videos, board, 1, None)
    tri = triangulate_corners(rig, corners)
    n_ok = np.isfinite(tri.points[..., 0]).sum(axis=1)
    f = int(np.argmax(n_ok)) if frame is None else frame
    if f >= len(n_ok) or n_ok[f] < 3:
        raise InputError(f"the board is triangulated at {0 if f >= len(n_ok) else n_ok[f]} "
                         f"corners in frame {f}; need 3", Path(videos[0]))  # fmt: skip
    new, scale = og.set_origin_board(rig, board, tri.points[f], corner)
    if abs(scale - 1) > 0.02:
        log_scale = f"; the board triangulates {100 * (scale - 1):+.1f}% off its size"
        click.secho(f"warning: scale{log_scale}", fg="yellow")
    return new, f"board {board.name} in frame {f}, origin at corner {corner}, z up"


def _named_length(text: str, what: str) -> tuple[str, str, float]:
    """'A:B=1.5' -> ('A', 'B', 1.5)."""
    from mvhand.errors import ConfigError

    try:
        pair, value = text.split("=")
        a, b = pair.split(":")
        return a.strip(), b.strip(), float(value)
    except ValueError:
        raise ConfigError(f"{what} takes 'A:B=METRES', got {text!r}") from None


def _people_inputs(rig, videos, keypoints: Path | None, step: int, max_frames: int | None):
    """Points (C, T, K, 2), scores, keypoint names, cameras (matched to the rig)."""
    from mvhand.calibrate import workflow as wf
    from mvhand.calibrate.people import MEDIAPIPE_POSE33
    from mvhand.core.skeleton import JOINT_NAMES
    from mvhand.errors import ConfigError, InputError

    if (keypoints is None) == (not videos):
        raise ConfigError("give either VIDEOS or --keypoints KP.npz")
    if keypoints is not None:
        from mvhand.io.keypoints import load_keypoints

        kp = load_keypoints(keypoints)
        C, T, H, J, _ = kp.keypoints_px.shape
        names = [f"{h}_{j}" for h in kp.hands for j in JOINT_NAMES]
        sub = rig.subset(kp.cameras)
        return (kp.keypoints_px.reshape(C, T, H * J, 2), kp.scores.reshape(C, T, H * J),
                names, sub)  # fmt: skip
    srcs = wf.expand_sources(videos)
    by_name = {wf.camera_name(s): s for s in srcs}
    missing = [n for n in rig.names if n not in by_name]
    if missing:
        raise InputError(f"no video for camera(s) {', '.join(missing)} (videos are matched by "
                         f"file name: {', '.join(sorted(by_name))})")  # fmt: skip
    pts, scores = wf.body_keypoints([by_name[n] for n in rig.names], step, max_frames)
    return pts, scores, list(MEDIAPIPE_POSE33), rig


@command.command("from-people")
@click.argument("videos", nargs=-1, type=click.Path(path_type=Path))
@click.option("--intrinsics", "intr_path", type=click.Path(path_type=Path), required=True,
              help="Calibration with the cameras' intrinsics (its extrinsics are ignored).")
@click.option("--keypoints", type=click.Path(path_type=Path), default=None,
              help="Use this mvhand 2D keypoint file (keypoints2d.npz) instead of VIDEOS.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output TOML.")
@click.option("--length", "length", default=None, metavar="A:B=METRES",
              help="Metric scale: the median distance between keypoints A and B, e.g. "
              "left_shoulder:left_elbow=0.30 or left_wrist:left_middle_mcp=0.09.")
@click.option("--camera-distance", default=None, metavar="CAM_A:CAM_B=METRES",
              help="Metric scale: the measured distance between two cameras.")
@click.option("--scale-board", type=click.Path(path_type=Path), default=None,
              help="Metric scale from this board, seen at least once by two cameras in "
              "--scale-videos.")
@click.option("--scale-videos", type=click.Path(path_type=Path), multiple=True,
              help="With --scale-board: synchronized videos (or a folder) showing the board.")
@click.option("--min-score", type=click.FloatRange(0, 1), default=0.7, show_default=True,
              help="Keypoints below this detector score are not used.")
@_STEP
@_MAX_FRAMES
def from_people(videos: tuple[Path, ...], intr_path: Path, keypoints: Path | None, out: Path,
                length: str | None, camera_distance: str | None, scale_board: Path | None,
                scale_videos: tuple[Path, ...], min_score: float, step: int,
                max_frames: int | None) -> None:  # fmt: skip
    """Extrinsics without a board, from the people the 2D front-end sees in synchronized
    VIDEOS (or from --keypoints): robust to outliers and left/right swaps."""
    from mvhand.calibrate import people as pp
    from mvhand.io.calib_convert import load_any_calibration
    from mvhand.io.calibration import save_calibration

    rig = load_any_calibration(intr_path)
    pts, scores, names, rig = _people_inputs(rig, videos, keypoints, step, max_frames)
    res = pp.calibrate_from_keypoints(rig.cameras, pts, scores, pp.mirror_index(names),
                                      min_score)  # fmt: skip
    scale = ("none (the first two cameras' baseline is 1 unit): give --length, --camera-distance "
             "or --scale-board")
    if length:
        a, b, value = _named_length(length, "--length")
        res = pp.scale_by_length(res, pp.keypoint_index(names, a), pp.keypoint_index(names, b),
                                 value)  # fmt: skip
        scale = f"median {a}-{b} distance = {value} m"
    elif camera_distance:
        a, b, value = _named_length(camera_distance, "--camera-distance")
        res = pp.scale_by_cameras(res, a, b, value)
        scale = f"distance {a}-{b} = {value} m"
    elif scale_board:
        from mvhand.errors import ConfigError

        if not scale_videos:
            raise ConfigError("--scale-board needs --scale-videos in which the board is seen")
        board = _board(scale_board)
        corners = _synced_board(res.rig, scale_videos, board, 1, None)
        res = pp.scale_by_board(res, board.neighbour_pairs(), board.square_size_m, corners)
        scale = f"board {board.name} ({board.square_size_m * 1000:.1f} mm squares)"
    for n, rms, k, sw in zip(res.rig.names, res.rms_px, res.inliers, res.swapped.sum(axis=1),
                             strict=True):  # fmt: skip
        click.echo(f"{n}: keypoint RMS {rms:.2f} px on {k} observations, {sw} left/right "
                   "swaps repaired")
    meta = {"source": "mvhand calib from-people", "scale": scale,
            "keypoint_rms_px": {n: round(float(v), 3) for n, v in zip(res.rig.names, res.rms_px,
                                                                       strict=True)},
            "world": "world = the frame of camera " + res.rig.names[0] + " (x right, y down, z "
            "forward); move it with mvhand calib set-origin"}  # fmt: skip
    save_calibration(out, res.rig, meta)
    click.echo(f"wrote {out}: {len(res.rig)} cameras; scale: {scale}")


@command.command("sync")
@click.argument("videos", nargs=-1, type=click.Path(path_type=Path))
@click.option("--calib", "cal", type=click.Path(path_type=Path), required=True,
              help="The rig's calibration (intrinsics and extrinsics).")
@click.option("--keypoints", type=click.Path(path_type=Path), default=None,
              help="Use this mvhand 2D keypoint file (keypoints2d.npz, every frame) instead of "
              "VIDEOS.")  # fmt: skip
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Output TOML (default: update CAL itself, which must be an anipose TOML).")
@click.option("--max-offset", type=click.IntRange(min=1), default=30, show_default=True,
              help="Largest offset searched, frames.")
@click.option("--reference", default=None, metavar="CAMERA",
              help="The camera whose offset is 0 (default: the first).")
@click.option("--min-score", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Keypoints below this confidence are not used.")
@_MAX_FRAMES
def sync(videos: tuple[Path, ...], cal: Path, keypoints: Path | None, out: Path | None,
         max_offset: int, reference: str | None, min_score: float,
         max_frames: int | None) -> None:  # fmt: skip
    """Per-camera frame offsets from the motion of the people in VIDEOS (or --keypoints),
    written to the calibration's [metadata] frame_offsets, which `mvhand run` applies. Camera
    c's frame f + offset shows the instant of the reference camera's frame f (a video that
    started k frames late has offset -k)."""
    import tomllib

    from mvhand.calibrate.sync import estimate_frame_offsets
    from mvhand.errors import ConfigError
    from mvhand.io.calib_convert import detect_format, load_rig
    from mvhand.io.calibration import save_calibration

    if out is None and detect_format(cal) != "anipose":
        raise ConfigError(f"{cal} is not an anipose TOML: give --out for the result")
    full = load_rig(cal)
    pts, scores, _, rig = _people_inputs(full, videos, keypoints, 1, max_frames)
    ref = 0 if reference is None else rig.index(reference)
    res = estimate_frame_offsets(rig, pts, scores, max_offset, min_score, ref)
    for n, o, s, b, a in zip(res.cameras, res.offsets, res.subframe, res.reproj_before_px,
                             res.reproj_after_px, strict=True):  # fmt: skip
        click.echo(f"{n}: offset {o:+d} frames (sub-frame {s:+.2f}); median reprojection "
                   f"{b:.2f} px without offsets, {a:.2f} px with")  # fmt: skip
    meta: dict = {}
    if detect_format(cal) == "anipose":
        meta = dict(tomllib.loads(cal.read_text(encoding="utf-8")).get("metadata", {}))
    meta.pop("units", None)
    meta["frame_offsets"] = {**{n: 0 for n in full.names}, **res.as_dict()}
    meta["frame_offsets_source"] = (f"mvhand calib sync (people's motion, reference "
                                    f"{res.reference}, max offset {max_offset})")  # fmt: skip
    target = out or cal
    save_calibration(target, full, meta)
    click.echo(f"wrote {target}: frame offsets {res.as_dict()}")
