"""Reading the official MANO model files without chumpy, safely.

The files ``MANO_RIGHT.pkl`` and ``MANO_LEFT.pkl`` are licensed: mvhand never ships or
downloads them. Users register at https://mano.is.tue.mpg.de, download "Models & Code", and
point mvhand at the folder holding the two ``.pkl`` files (``--mano-dir`` or ``fit.mano_dir``).

They are Python 2 pickles (read with ``encoding="latin1"``) holding numpy arrays, a scipy
sparse ``J_regressor`` and chumpy ``Ch`` objects (``shapedirs``). A restricted unpickler maps
the chumpy objects to plain arrays and refuses every other global (a pickle can run arbitrary
code), so chumpy is never imported.
"""

from __future__ import annotations

import _compat_pickle
import logging
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from mvhand.errors import InputError
from mvhand.fit.mano import MANO_PARENTS, N_JOINTS_MANO, ManoModel, check_tip_vertices

log = logging.getLogger(__name__)

FILE_NAMES = {"right": "MANO_RIGHT.pkl", "left": "MANO_LEFT.pkl"}
REQUIRED_KEYS = ("v_template", "f", "weights", "kintree_table", "J_regressor", "shapedirs",
                 "posedirs", "hands_components", "hands_mean")  # fmt: skip
HOW_TO_GET = (
    "MANO model files are licensed and not shipped with mvhand: register at "
    "https://mano.is.tue.mpg.de, download 'Models & Code', and point --mano-dir (or the "
    "config key fit.mano_dir) at the folder holding MANO_RIGHT.pkl and MANO_LEFT.pkl "
    "(found as models/ in the download). Without them use --model kinematic."
)


class _ChumpyStandIn:
    """Receives a pickled ``chumpy.Ch`` object's state; :meth:`array` gives its value."""

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def array(self) -> np.ndarray:
        state = self.state if isinstance(self.state, dict) else {}
        if "x" not in state:
            raise ValueError("a chumpy object that is an expression, not a plain array")
        return _plain(state["x"])


class _SparseStandIn:
    """Receives a pickled scipy sparse matrix's state (any scipy version's layout)."""

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def array(self) -> np.ndarray:
        import scipy.sparse as sp

        s = self.state
        shape = tuple(s.get("_shape") or s.get("shape"))
        fmt = s.get("format", "csc")
        cls = {"csc": sp.csc_matrix, "csr": sp.csr_matrix}.get(fmt, sp.csc_matrix)
        return cls((s["data"], s["indices"], s["indptr"]), shape=shape).toarray()


def _plain(value: Any) -> Any:
    if isinstance(value, (_ChumpyStandIn, _SparseStandIn)):
        return value.array()
    return value


_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
}  # fmt: skip
_SAFE_GLOBALS = {("copyreg", "_reconstructor"), ("builtins", "object"), ("builtins", "set"),
                 ("builtins", "frozenset"), ("_codecs", "encode")}  # fmt: skip


class _RestrictedUnpickler(pickle.Unpickler):
    """Allows numpy arrays, scipy sparse matrices and chumpy objects; nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        # Python 2 names (copy_reg, __builtin__), as pickle's own find_class maps them
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if (module, name) in _NUMPY_GLOBALS or (module, name) in _SAFE_GLOBALS:
            return super().find_class(module, name)
        if module == "chumpy" or module.startswith("chumpy."):
            return _ChumpyStandIn
        if module.startswith("scipy.sparse") and name in ("csc_matrix", "csr_matrix"):
            return _SparseStandIn
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a model file")


def read_mano_pickle(path: str | Path) -> dict[str, Any]:
    """The raw dictionary of a MANO pickle, chumpy and sparse objects turned into arrays."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            data = _RestrictedUnpickler(fh, encoding="latin1").load()
    except FileNotFoundError:
        raise InputError(f"MANO model file not found. {HOW_TO_GET}", path) from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            KeyError, IndexError) as exc:  # fmt: skip
        raise InputError(f"not a readable MANO model pickle ({exc})", path) from None
    if not isinstance(data, dict):
        raise InputError(f"a MANO pickle holds a dict, this one a {type(data).__name__}", path)
    try:
        return {str(k): _plain(v) for k, v in data.items()}
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"MANO model file has an unreadable entry ({exc})", path) from None


def _parents_from_kintree(kintree: np.ndarray, path: Path) -> np.ndarray:
    kt = np.asarray(kintree).astype(np.int64)
    if kt.shape != (2, N_JOINTS_MANO):
        raise InputError(f"'kintree_table' must have shape (2, 16), got {kt.shape}", path)
    col_of = {int(j): i for i, j in enumerate(kt[1])}
    parents = np.array([-1] + [col_of.get(int(p), -2) for p in kt[0, 1:]])
    if not np.array_equal(parents, MANO_PARENTS):
        raise InputError(f"'kintree_table' is not MANO's hand tree (parents {parents.tolist()})",
                         path)  # fmt: skip
    return parents


_SHAPES = {"v_template": (778, 3), "f": (1538, 3), "weights": (778, 16),
           "J_regressor": (16, 778), "posedirs": (778, 3, 135), "hands_components": (45, 45),
           "hands_mean": (45,)}  # fmt: skip


def mano_model_from_dict(data: dict[str, Any], side: str, path: str | Path = "<dict>") -> ManoModel:
    """Validate a MANO dictionary and build a :class:`ManoModel` (InputError naming the key)."""
    path = Path(path)
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise InputError(f"MANO model file lacks the key(s) {', '.join(missing)}; "
                         "is it the official MANO_RIGHT.pkl / MANO_LEFT.pkl?", path)  # fmt: skip
    arrays = {}
    for key in REQUIRED_KEYS:
        value = data[key]
        value = value.toarray() if hasattr(value, "toarray") else value  # scipy sparse
        try:
            arrays[key] = np.asarray(value, dtype=np.int64 if key == "f" else float)
        except (TypeError, ValueError) as exc:
            raise InputError(f"key '{key}' is not numeric ({exc})", path) from None
        want = _SHAPES.get(key)
        if want is not None and arrays[key].shape != want:
            raise InputError(f"key '{key}' must have shape {want}, got {arrays[key].shape}", path)
    sd = arrays["shapedirs"]
    if sd.ndim != 3 or sd.shape[:2] != (778, 3):
        raise InputError(f"key 'shapedirs' must have shape (778, 3, n), got {sd.shape}", path)
    _parents_from_kintree(data["kintree_table"], path)
    return ManoModel(side, arrays["v_template"], arrays["f"], arrays["weights"],
                     arrays["J_regressor"], sd, arrays["posedirs"], arrays["hands_components"],
                     arrays["hands_mean"])  # fmt: skip


def load_mano_model(path: str | Path, side: str) -> ManoModel:
    """Load one official MANO pickle as a :class:`ManoModel`; warns on unusual tip vertices."""
    model = mano_model_from_dict(read_mano_pickle(path), side, path)
    for problem in check_tip_vertices(model):
        log.warning("%s: %s; fingertip keypoints may be off", path, problem)
    return model


def load_mano_dir(folder: str | Path, sides: tuple[str, ...] = ("left", "right")
                  ) -> dict[str, ManoModel]:  # fmt: skip
    """Load ``MANO_LEFT.pkl`` / ``MANO_RIGHT.pkl`` from ``folder`` for the requested sides.

    When both are loaded, the known defect of the official left file (its ``shapedirs`` x
    component is not mirrored) is repaired, as smplx does.

    Raises:
        InputError: the folder or a file is missing (saying where to get them), or malformed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"MANO model folder not found. {HOW_TO_GET}", folder)
    models = {}
    for side in sides:
        path = folder / FILE_NAMES[side]
        if not path.is_file():
            alt = [p for p in folder.glob("*.pkl") if p.name.lower() == FILE_NAMES[side].lower()]
            if not alt:
                raise InputError(f"{FILE_NAMES[side]} is missing. {HOW_TO_GET}", folder)
            path = alt[0]
        models[side] = load_mano_model(path, side)
    if "left" in models and "right" in models:
        models["left"] = _fix_left_shapedirs(models["left"], models["right"])
    return models


def _fix_left_shapedirs(left: ManoModel, right: ManoModel) -> ManoModel:
    """Mirror the left ``shapedirs`` x component when it equals the right one's (file defect)."""
    if np.abs(left.shapedirs[:, 0] - right.shapedirs[:, 0]).sum() >= 1.0:
        return left
    log.info("repairing the left MANO model's shapedirs (x component not mirrored)")
    sd = left.shapedirs.copy()
    sd[:, 0] *= -1
    return ManoModel(left.side, left.v_template, left.faces, left.weights, left.J_regressor, sd,
                     left.posedirs, left.hands_components, left.hands_mean)  # fmt: skip
