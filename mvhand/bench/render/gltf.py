"""A small reader for the skinned glTF 2.0 binaries (``.glb``) of the shipped hand meshes.

Why our own and not pygltflib or trimesh: the hands need five accessors, one skin and the node
transforms; reading them is about 80 lines of numpy, has no dependency and loads a hand in
about 1 ms (pygltflib would add a dependency and still leave the accessor decoding, the
joint matrices and the skinning to us; trimesh's glTF loader drops the skin).

Supported: one binary chunk, non-interleaved or strided accessors of float32 / uint8 / uint16 /
uint32 components, node TRS or matrix transforms, one skin. That is what the WebXR hands
(and Blender's exporter in general) write; anything else is a :class:`~mvhand.errors.InputError`.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from mvhand.errors import InputError

_GLB_MAGIC = 0x46546C67  # "glTF"
_CHUNK_JSON, _CHUNK_BIN = 0x4E4F534A, 0x004E4942
_COMPONENTS = {5121: np.uint8, 5123: np.uint16, 5125: np.uint32, 5126: np.float32}
_WIDTH = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}


@dataclass(frozen=True, eq=False)
class SkinnedMesh:
    """One skinned triangle mesh and its skeleton, as stored in the file.

    Attributes:
        vertices: ``(V, 3)`` bind-pose positions (metres, the file's frame).
        normals: ``(V, 3)`` bind-pose unit normals.
        faces: ``(F, 3)`` vertex indices.
        joint_index: ``(V, 4)`` indices into ``joint_names`` of the vertex's influences.
        joint_weight: ``(V, 4)`` their weights (rows sum to 1).
        joint_names: ``(J,)`` skin joint names, in the skin's order.
        inverse_bind: ``(J, 4, 4)`` inverse bind matrices.
        joint_global: ``(J, 4, 4)`` each joint's transform in the file's scene (the rest pose).
    """

    vertices: np.ndarray
    normals: np.ndarray
    faces: np.ndarray
    joint_index: np.ndarray
    joint_weight: np.ndarray
    joint_names: tuple[str, ...]
    inverse_bind: np.ndarray
    joint_global: np.ndarray


def _chunks(data: bytes, path: Path) -> tuple[dict, bytes]:
    if len(data) < 20:
        raise InputError("not a glTF binary (file too short)", path)
    magic, version, _length = struct.unpack_from("<III", data, 0)
    if magic != _GLB_MAGIC or version != 2:
        raise InputError("not a glTF 2.0 binary (.glb)", path)
    doc, binary, offset = None, b"", 12
    while offset + 8 <= len(data):
        size, kind = struct.unpack_from("<II", data, offset)
        body = data[offset + 8: offset + 8 + size]
        if kind == _CHUNK_JSON:
            doc = json.loads(body.decode("utf-8"))
        elif kind == _CHUNK_BIN:
            binary = body
        offset += 8 + size
    if doc is None:
        raise InputError("glTF binary without a JSON chunk", path)
    return doc, binary


def _accessor(doc: dict, binary: bytes, index: int, path: Path) -> np.ndarray:
    acc = doc["accessors"][index]
    view = doc["bufferViews"][acc["bufferView"]]
    dtype = np.dtype(_COMPONENTS.get(acc["componentType"], np.void))
    if dtype == np.void or acc["type"] not in _WIDTH:
        raise InputError(f"accessor {index}: unsupported component type or shape", path)
    width, count = _WIDTH[acc["type"]], acc["count"]
    start = view.get("byteOffset", 0) + acc.get("byteOffset", 0)
    stride = view.get("byteStride", width * dtype.itemsize)
    rows = np.ndarray((count, width), dtype=dtype, buffer=binary, offset=start,
                      strides=(stride, dtype.itemsize))  # fmt: skip
    return np.array(rows)


def _node_matrix(node: dict) -> np.ndarray:
    if "matrix" in node:
        return np.asarray(node["matrix"], float).reshape(4, 4).T  # glTF is column-major
    M = np.eye(4)
    if "rotation" in node:
        M[:3, :3] = Rotation.from_quat(node["rotation"]).as_matrix()  # x, y, z, w as scipy
    M[:3, :3] = M[:3, :3] * np.asarray(node.get("scale", [1.0, 1.0, 1.0]), float)
    M[:3, 3] = node.get("translation", [0.0, 0.0, 0.0])
    return M


def _global_matrices(doc: dict) -> list[np.ndarray]:
    """Scene transform of every node (parents first, through the ``children`` lists)."""
    nodes = doc["nodes"]
    parent = {c: i for i, n in enumerate(nodes) for c in n.get("children", [])}
    out: list[np.ndarray | None] = [None] * len(nodes)

    def resolve(i: int) -> np.ndarray:
        if out[i] is None:
            local = _node_matrix(nodes[i])
            out[i] = resolve(parent[i]) @ local if i in parent else local
        return out[i]

    return [resolve(i) for i in range(len(nodes))]


def read_glb(path: str | Path) -> SkinnedMesh:
    """Read the first skinned mesh of a ``.glb`` file.

    Raises:
        InputError: the file is missing, not a glTF 2.0 binary, or has no skinned mesh.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror})", path) from None
    doc, binary = _chunks(data, path)
    node = next((n for n in doc.get("nodes", []) if "mesh" in n and "skin" in n), None)
    if node is None:
        raise InputError("no skinned mesh in the glTF file", path)
    prim = doc["meshes"][node["mesh"]]["primitives"][0]
    attr = prim["attributes"]
    needed = ("POSITION", "NORMAL", "JOINTS_0", "WEIGHTS_0")
    if any(k not in attr for k in needed) or "indices" not in prim:
        raise InputError(f"the skinned mesh lacks one of {', '.join(needed)} or indices", path)
    skin = doc["skins"][node["skin"]]
    glob = _global_matrices(doc)
    weights = _accessor(doc, binary, attr["WEIGHTS_0"], path).astype(float)
    weights /= np.maximum(weights.sum(1, keepdims=True), 1e-12)
    ibm = _accessor(doc, binary, skin["inverseBindMatrices"], path).astype(float)
    return SkinnedMesh(
        vertices=_accessor(doc, binary, attr["POSITION"], path).astype(float),
        normals=_accessor(doc, binary, attr["NORMAL"], path).astype(float),
        faces=_accessor(doc, binary, prim["indices"], path).astype(np.int64).reshape(-1, 3),
        joint_index=_accessor(doc, binary, attr["JOINTS_0"], path).astype(np.int64),
        joint_weight=weights,
        joint_names=tuple(doc["nodes"][j].get("name", str(j)) for j in skin["joints"]),
        inverse_bind=ibm.reshape(-1, 4, 4).transpose(0, 2, 1),
        joint_global=np.stack([glob[j] for j in skin["joints"]]),
    )
