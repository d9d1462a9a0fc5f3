"""Body models: load a user's SMPL model (or rigged mesh) safely and pose it in batches with ``smplx``.

SMPL (Loper et al. 2015) maps shape ``beta`` (10 numbers) and pose ``theta`` (72 numbers: an
axis-angle rotation for each of the 24 joints, root first) to a mesh. nrtool never ships the
licensed model: the user points ``--body-model`` at their own file, and tests use the procedural
body of :mod:`nrtool.synth.body`, written in the same format and loaded by the same code.

Loading (:func:`load_model_data`):

- ``.npz``: read with ``allow_pickle=False`` (an ``.npz`` may hold pickled objects; we never
  unpickle them).
- ``.pkl`` (the original SMPL release): these pickles hold ``chumpy.Ch`` objects and
  ``scipy.sparse`` matrices. :class:`RestrictedUnpickler` loads them *without* chumpy: it maps
  every ``chumpy`` class to an inert stand-in that only records its pickled state (the stored
  array is its ``x``), maps sparse matrices to a stand-in rebuilt as a dense array, allows the
  numpy array reconstruction functions and the few builtins a protocol-0/2 pickle needs, and
  refuses every other global, so no model file can run code (``os.system``, ``eval``, ...).
  Sizes a pickle states rather than brings (a sparse matrix's shape, an array allocated from
  its shape) are bounded by :data:`MAX_STATED_ELEMENTS` before anything is allocated, and
  shared references are resolved once, so a small file cannot claim terabytes or hours.
- a folder: ``SMPL_{GENDER}.pkl|npz`` or ``basicModel_{f|m|neutral}_lbs_10_207_0_v1.0.0.pkl``
  inside it, chosen by ``gender``.

Rigged meshes: a body exported without SMPL's shape space (``shapedirs``) — vertices, faces,
per-vertex skinning weights, rest joints and parents, optionally ``posedirs`` and
``J_regressor`` (:data:`RIGGED_KEYS` lists the names accepted) — loads too. It is posed by
linear blend skinning built from smplx's own rotation and kinematic-chain functions and has no
betas (:class:`BodyModel` refuses non-zero ones). It does not go through ``smplx.SMPL``, whose
extra keypoints are picked by SMPL's vertex ids.

The arrays of an SMPL model are handed to ``smplx.SMPL`` as its ``data_struct``: the forward
pass is smplx's own. A model with another topology than SMPL's 6890 vertices must name the
vertices of smplx's extra keypoints (nose, eyes, ears, toes, heels, finger tips); the procedural body stores
them as ``nrtool_vertex_ids_*`` arrays and :class:`BodyModel` passes them as ``vertex_ids``.

:meth:`BodyModel.forward` returns, batched over frames: vertices, the 24 SMPL joints, vertex
normals and the per-joint rigid transforms ``A`` (4x4) that linear blend skinning applies:
``v_posed = sum_j w_j A_j [v_rest + pose_offsets; 1]`` and ``joint_j = A_j [J_rest_j; 1]``.
smplx and torch are imported inside functions, so importing this module is cheap.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nrtool.body.filetypes import is_numpy_file, sniff
from nrtool.errors import InputFileError, NrtoolError

if TYPE_CHECKING:
    import torch

__all__ = [
    "SMPL_JOINT_NAMES",
    "SMPL_PARENTS",
    "NUM_JOINTS",
    "POSE_DIM",
    "EXTRA_VERTEX_NAMES",
    "GENDERS",
    "RestrictedUnpickler",
    "load_pickle_restricted",
    "resolve_model_path",
    "load_model_data",
    "model_kind",
    "RIGGED_KEYS",
    "MAX_STATED_ELEMENTS",
    "BodyOutput",
    "BodyModel",
    "vertex_normals",
]

#: SMPL's 24 joints in SMPL order (index = position in ``theta`` / 3).
SMPL_JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hand", "right_hand",
)  # fmt: skip
#: Parent of each joint (SMPL's kinematic tree, ``kintree_table[0]``); -1 for the root.
SMPL_PARENTS: tuple[int, ...] = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)
NUM_JOINTS = 24
POSE_DIM = 3 * NUM_JOINTS
#: smplx's extra keypoints picked from vertices (its ``vertex_ids`` keys), in smplx's order.
EXTRA_VERTEX_NAMES: tuple[str, ...] = (
    "nose", "reye", "leye", "rear", "lear", "LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe",
    "RHeel", "lthumb", "lindex", "lmiddle", "lring", "lpinky", "rthumb", "rindex", "rmiddle", "rring",
    "rpinky",
)  # fmt: skip
GENDERS = ("neutral", "male", "female")
#: Arrays a model file must hold (the ``data_struct`` fields ``smplx.SMPL`` reads).
REQUIRED_KEYS = ("v_template", "f", "weights", "J_regressor", "kintree_table", "shapedirs", "posedirs")
#: Prefix of the arrays naming a non-SMPL topology's keypoint vertices (see module docstring).
VERTEX_IDS_PREFIX = "nrtool_vertex_ids_"
#: A rigged mesh (a body without SMPL's shape space): role -> the names accepted, first found
#: wins. ``joints`` may instead come from ``J_regressor (24, V)``; ``posedirs`` is optional.
RIGGED_KEYS: dict[str, tuple[str, ...]] = {
    "vertices": ("v_template", "vertices"),
    "faces": ("f", "faces"),
    "weights": ("weights", "lbs_weights", "skinning_weights"),
    "joints": ("J", "joints"),
    "parents": ("kintree_table", "parents"),
}
#: What ``--body-model`` may be, for messages.
MODEL_FORMATS = (
    "an SMPL model (.pkl or .npz, or a folder of SMPL_{GENDER} files) or a rigged-mesh .npz "
    "(vertices, faces, weights, joints, parents)"
)

PathLike = str | os.PathLike[str]


# --------------------------------------------------------------------------------------------
# Restricted unpickling of original SMPL .pkl files
# --------------------------------------------------------------------------------------------


class _Inert:
    """Base of the stand-ins: created without running any constructor, keeps only its state."""

    def __setstate__(self, state: Any) -> None:
        object.__setattr__(self, "_state", state)

    @property
    def state(self) -> Any:
        return getattr(self, "_state", None)


class ChumpyStandIn(_Inert):
    """What a pickled ``chumpy`` object becomes: its state; the stored array is ``state['x']``."""

    qualname = "chumpy.?"


class SparseStandIn(_Inert):
    """What a pickled ``scipy.sparse`` csc/csr matrix becomes; rebuilt as a dense array."""

    qualname = "scipy.sparse.?"


def _safe_reconstructor(cls: Any, base: Any, state: Any) -> Any:
    """``copyreg._reconstructor`` for protocol-0/1 pickles, allowed only for our stand-ins."""
    if isinstance(cls, type) and issubclass(cls, _Inert) and base is object and state is None:
        return cls.__new__(cls)
    raise pickle.UnpicklingError(f"refusing copyreg._reconstructor for {getattr(cls, '__name__', cls)!r}")


def _latin1_bytes(text: Any, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as Python 3 protocol-0..2 pickles use it for bytes; nothing else."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("refusing _codecs.encode other than str -> latin1 bytes")
    return text.encode("latin1")


#: Largest array a pickled model may make the loader allocate from a size it states: the
#: shape of a sparse matrix rebuilt dense, of an array made by ``_reconstruct``/``ndarray(...)``
#: or of an object array filled by ``__setstate__`` (these three allocate before, or without,
#: reading data of that size from the file; other arrays must bring their bytes). SMPL's largest
#: array is posedirs, 6890 x 3 x 207 = 4.3 M numbers, SMPL-X's J_regressor 55 x 10475: 5e7
#: (400 MB as float64) leaves ten times that room and still fits a laptop.
MAX_STATED_ELEMENTS = 50_000_000
#: Largest side of a sparse matrix (rows or columns).
MAX_SPARSE_SIDE = 1_000_000


def _multiarray() -> Any:
    return np._core.multiarray if hasattr(np, "_core") else np.core.multiarray  # numpy 2 / 1


def _check_stated_size(shape: Any, dtype: Any = None) -> None:
    """Refuse a stated shape (and item size) beyond :data:`MAX_STATED_ELEMENTS`."""
    try:
        dims = [int(d) for d in (shape if isinstance(shape, (tuple, list)) else (shape,))]
        itemsize = np.dtype(dtype).itemsize if dtype is not None else 8
    except (TypeError, ValueError) as exc:
        raise pickle.UnpicklingError(f"invalid array shape or dtype ({exc})") from exc
    count = 1
    for d in dims:
        if d < 0:
            raise pickle.UnpicklingError(f"negative array dimension in shape {tuple(dims)}")
        count *= d
    if count > MAX_STATED_ELEMENTS or count * max(itemsize, 1) > 8 * MAX_STATED_ELEMENTS:
        raise pickle.UnpicklingError(f"array of shape {tuple(dims)} is larger than any body model needs (limit {MAX_STATED_ELEMENTS:,} numbers)")


class _BoundedArray(np.ndarray):
    """``numpy.ndarray`` as the restricted unpickler hands it out: sizes checked before allocating.

    Pickled arrays are rebuilt as ``_reconstruct(ndarray, (0,), ...)`` followed by
    ``__setstate__((version, shape, dtype, fortran, data))``; numpy checks that ``data`` has
    the bytes of ``shape`` except for object arrays, which it allocates from ``shape`` alone.
    Turned into a plain ``ndarray`` once loading is done.
    """

    def __new__(cls, shape: Any = (0,), dtype: Any = float, *args: Any, **kwargs: Any) -> "_BoundedArray":
        _check_stated_size(shape, dtype)
        return super().__new__(cls, shape, dtype, *args, **kwargs)

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) in (4, 5):
            shape, dtype = state[-4], state[-3]
            _check_stated_size(shape, dtype)
        super().__setstate__(state)


def _bounded_reconstruct(subtype: Any, shape: Any, dtype: Any) -> Any:
    """``numpy.core.multiarray._reconstruct`` for plain arrays only, with the size checked."""
    if subtype is not _BoundedArray:
        raise pickle.UnpicklingError(f"refusing to reconstruct {getattr(subtype, '__name__', subtype)!r} (only numpy arrays)")
    _check_stated_size(shape, dtype)
    return _multiarray()._reconstruct(_BoundedArray, shape, dtype)


def _bounded_scalar(dtype: Any, *args: Any) -> Any:
    """``numpy.core.multiarray.scalar`` with the item size checked."""
    _check_stated_size((1,), dtype)
    return _multiarray().scalar(dtype, *args)


def _numpy_global(name: str) -> Any:
    if name == "ndarray":
        return _BoundedArray
    if name == "dtype":
        return np.dtype
    if name == "_reconstruct":
        return _bounded_reconstruct
    return _bounded_scalar


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that only builds numpy arrays, plain containers and inert stand-ins.

    ``chumpy.*`` classes become :class:`ChumpyStandIn`, ``scipy.sparse`` csc/csr matrices
    :class:`SparseStandIn`; numpy's array/scalar/dtype reconstruction and a few builtins are
    allowed; every other global raises :class:`pickle.UnpicklingError`.
    """

    _NUMPY_MODULES = {"numpy", "numpy.core.multiarray", "numpy._core.multiarray"}
    _NUMPY_NAMES = {"_reconstruct", "scalar", "ndarray", "dtype"}
    _BUILTINS = {"set": set, "frozenset": frozenset, "object": object, "list": list, "dict": dict, "tuple": tuple}
    _SPARSE_NAMES = {"csc_matrix", "csr_matrix"}

    # Python 2 names (original SMPL files are Python 2 pickles); pickle's own find_class maps
    # these, ours must do it itself.
    _PY2_MODULES = {"copy_reg": "copyreg", "__builtin__": "builtins"}

    def find_class(self, module: str, name: str) -> Any:
        module = self._PY2_MODULES.get(module, module)
        if module == "chumpy" or module.startswith("chumpy."):
            return type(name, (ChumpyStandIn,), {"qualname": f"{module}.{name}"})
        if module.startswith("scipy.sparse") and name in self._SPARSE_NAMES:
            return type(name, (SparseStandIn,), {"qualname": f"{module}.{name}", "format": name[:3]})
        if module in self._NUMPY_MODULES and name in self._NUMPY_NAMES:
            return _numpy_global(name)
        if module == "builtins" and name in self._BUILTINS:
            return self._BUILTINS[name]
        if module == "copyreg" and name == "_reconstructor":
            return _safe_reconstructor
        if module == "_codecs" and name == "encode":
            return _latin1_bytes
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} (only numpy, scipy.sparse and chumpy data are allowed)")


def _resolve_stand_ins(value: Any, where: str, memo: dict[int, Any] | None = None) -> Any:
    """Replace stand-ins by numpy arrays, recursively through dicts, lists and tuples.

    Memoised by object identity: a pickle can share one list many times over (``[a, a]``,
    then ``[[a, a], [a, a]]``, ...), and walking it as a tree would take exponential time.
    """
    memo = {} if memo is None else memo
    key = id(value)
    if key in memo:
        return memo[key][1]
    if isinstance(value, ChumpyStandIn):
        state = value.state
        if not isinstance(state, dict) or "x" not in state:
            raise NrtoolError(
                f"{where} is a chumpy expression ({type(value).qualname}) without a stored value; "
                "only plain chumpy arrays can be read without chumpy"
            )
        result: Any = np.asarray(_resolve_stand_ins(state["x"], where, memo))
    elif isinstance(value, SparseStandIn):
        result = _sparse_to_dense(value, where)
    elif isinstance(value, np.ndarray):
        result = value.view(np.ndarray) if type(value) is not np.ndarray else value
    elif isinstance(value, dict):
        result = {k: _resolve_stand_ins(item, f"{where}[{k!r}]" if where else repr(k), memo) for k, item in value.items()}
    elif isinstance(value, (list, tuple)):
        result = type(value)(_resolve_stand_ins(item, where, memo) for item in value)
    else:
        result = value
    memo[key] = (value, result)  # keep ``value`` alive so that its id is not reused
    return result


def _sparse_to_dense(value: SparseStandIn, where: str) -> np.ndarray:
    """A pickled csc/csr matrix as a dense ``(rows, cols)`` array, after checking its header.

    The shape is the file's own claim, so it is bounded (:data:`MAX_SPARSE_SIDE`,
    :data:`MAX_STATED_ELEMENTS`) before anything of that size is allocated, and the index
    arrays are checked against it (numpy would wrap negative indices silently).
    """
    state = value.state if isinstance(value.state, dict) else {}
    shape = state.get("_shape", state.get("shape"))
    try:
        data = np.asarray(state["data"], dtype=np.float64)
        indices = np.asarray(state["indices"], dtype=np.int64).reshape(-1)
        indptr = np.asarray(state["indptr"], dtype=np.int64).reshape(-1)
        rows, cols = (int(shape[0]), int(shape[1]))
    except (KeyError, TypeError, IndexError, ValueError) as exc:
        raise NrtoolError(f"{where}: sparse matrix without numeric data/indices/indptr/shape") from exc
    data = data.reshape(-1)
    if not (0 <= rows <= MAX_SPARSE_SIDE and 0 <= cols <= MAX_SPARSE_SIDE) or rows * cols > MAX_STATED_ELEMENTS:
        raise NrtoolError(
            f"{where}: sparse matrix of shape ({rows}, {cols}) is larger than any body model needs "
            f"(limits: {MAX_SPARSE_SIDE:,} rows or columns, {MAX_STATED_ELEMENTS:,} entries)"
        )
    csc = type(value).format == "csc"
    major, minor = (cols, rows) if csc else (rows, cols)
    nnz = int(indptr[-1]) if len(indptr) else -1
    if (
        len(indptr) != major + 1
        or indptr[0] != 0
        or np.any(np.diff(indptr) < 0)
        or not 0 <= nnz <= len(indices)
        or len(indices) != len(data)
        or (nnz and (indices[:nnz].min() < 0 or indices[:nnz].max() >= minor))
    ):
        raise NrtoolError(f"{where}: inconsistent sparse matrix (indptr/indices do not fit its shape ({rows}, {cols}))")
    dense = np.zeros((rows, cols), dtype=np.float64)
    major_index = np.repeat(np.arange(major), np.diff(indptr))
    minor_index = indices[:nnz]
    if csc:
        np.add.at(dense, (minor_index, major_index), data[:nnz])
    else:
        np.add.at(dense, (major_index, minor_index), data[:nnz])
    return dense


def load_pickle_restricted(path: PathLike) -> Any:
    """Load a pickle (e.g. an original SMPL ``.pkl``) without running code or needing chumpy.

    Returns the unpickled object with chumpy arrays and sparse matrices turned into numpy
    arrays. Raises :class:`InputFileError` for a file that is not a pickle, is truncated, or
    references any class outside the allowed set (the message names the class).
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            raw = RestrictedUnpickler(handle, encoding="latin1").load()
    except pickle.UnpicklingError as exc:
        raise InputFileError(path, f"unsafe or invalid pickle: {exc}") from exc
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as exc:
        raise InputFileError(path, f"not a readable pickle ({type(exc).__name__}: {exc})") from exc
    except OSError as exc:
        raise InputFileError(path, f"cannot read ({exc.strerror or exc})") from exc
    except RecursionError as exc:
        raise InputFileError(path, "pickle nested too deeply to be a model file") from exc
    try:
        return _resolve_stand_ins(raw, "")
    except NrtoolError as exc:
        raise InputFileError(path, str(exc)) from exc
    except RecursionError as exc:
        raise InputFileError(path, "pickle nested too deeply to be a model file") from exc


# --------------------------------------------------------------------------------------------
# Model files
# --------------------------------------------------------------------------------------------


def resolve_model_path(path: PathLike, gender: str = "neutral") -> Path:
    """The model file to read: ``path`` itself, or the file for ``gender`` inside a folder."""
    if gender not in GENDERS:
        raise NrtoolError(f"unknown gender {gender!r}; choose {', '.join(GENDERS)}")
    p = Path(path).expanduser()
    if not p.exists():
        raise InputFileError(p, "no such file or folder (pass your SMPL model .pkl/.npz, or `nrtool synth body`'s .npz)")
    if p.is_file():
        return p
    short = {"neutral": "neutral", "male": "m", "female": "f"}[gender]
    candidates = [
        p / f"SMPL_{gender.upper()}.npz",
        p / f"SMPL_{gender.upper()}.pkl",
        p / f"basicModel_{short}_lbs_10_207_0_v1.0.0.pkl",
        p / f"basicmodel_{short}_lbs_10_207_0_v1.1.0.pkl",
        p / "smpl" / f"SMPL_{gender.upper()}.pkl",
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise InputFileError(p, f"folder holds no {gender} SMPL model (looked for {', '.join(c.name for c in candidates[:3])})")


def load_model_data(path: PathLike, gender: str = "neutral") -> dict[str, Any]:
    """The arrays of a body model file (``.pkl`` or ``.npz``, or a folder + ``gender``).

    An **SMPL model** (it has ``shapedirs``) gives a dict with at least :data:`REQUIRED_KEYS`,
    each checked for shape consistency (``V`` vertices, ``J`` = 24 joints): ``v_template (V,3)``,
    ``f (F,3)``, ``weights (V,J)``, ``J_regressor (J,V)`` (dense), ``kintree_table (2,J)``,
    ``shapedirs (V,3,B)``, ``posedirs (V,3,P)``, plus any ``nrtool_vertex_ids_*`` entries.

    A **rigged mesh** (no ``shapedirs``; see :data:`RIGGED_KEYS` for the names accepted) gives
    ``v_template (V,3)``, ``f (F,3)``, ``weights (V,J)``, ``J (J,3)`` (rest joints, stored or
    ``J_regressor @ v_template``), ``parents (J,)`` (root -1), ``kintree_table (2,J)``, and
    ``posedirs (V,3,207)`` / ``J_regressor (J,V)`` when the file has them. :func:`model_kind`
    tells the two apart.

    Raises:
        InputFileError: missing, unreadable, unsafe (pickle with foreign classes), a key
            missing or an array of the wrong shape; the message names the file.
    """
    p = resolve_model_path(path, gender)
    if p.stat().st_size == 0:
        raise InputFileError(p, "file is empty")
    ext = p.suffix.lower()
    if ext == ".pkl":
        data = load_pickle_restricted(p)
        if not isinstance(data, dict):
            raise InputFileError(p, f"pickle holds a {type(data).__name__}, expected a dict of SMPL arrays")
    elif ext == ".npz" and is_numpy_file(p):
        try:
            with np.load(p, allow_pickle=False) as archive:
                data = {key: archive[key] for key in archive.files}
        except ValueError as exc:
            if "allow_pickle" in str(exc):  # object arrays need pickle: refused
                raise InputFileError(p, f"cannot read .npz without unpickling objects ({exc})") from exc
            raise InputFileError(p, f"not a readable .npz file ({exc})") from exc
        except (OSError, EOFError) as exc:
            raise InputFileError(p, f"not a readable .npz file ({exc})") from exc
        except Exception as exc:  # zipfile.BadZipFile and friends
            raise InputFileError(p, f"not a readable .npz file ({type(exc).__name__}: {exc})") from exc
        if not isinstance(data, dict) or not data:
            raise InputFileError(p, "not a body model: the .npz holds no arrays")
    else:
        raise InputFileError(p, f"{sniff(p)}, not a body model; expected {MODEL_FORMATS}")
    if "shapedirs" in data:
        return _check_model_arrays(p, data)
    return _check_rigged_arrays(p, data)


def model_kind(data: dict[str, Any]) -> str:
    """``"smpl"`` or ``"rigged"`` for a dict from :func:`load_model_data`."""
    return "smpl" if "shapedirs" in data else "rigged"


def _check_mesh(p: Path, vertices: np.ndarray, faces: np.ndarray, vertex_key: str, face_key: str) -> int:
    """A body's rest mesh: ``(V, 3)`` vertices (V >= 4) and ``(F, 3)`` faces into them; returns V."""
    if vertices.ndim != 2 or vertices.shape[1] != 3 or len(vertices) < 4:
        raise InputFileError(p, f"{vertex_key} must have shape (V, 3), got {vertices.shape}")
    if faces.ndim != 2 or faces.shape[1] != 3 or len(faces) == 0:
        raise InputFileError(p, f"{face_key} must have shape (F, 3), got {faces.shape}")
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise InputFileError(p, f"{face_key} refer{'s' if face_key == 'f' else ''} to vertices that do not exist")
    return len(vertices)


def _check_model_arrays(p: Path, data: dict[str, Any]) -> dict[str, Any]:
    missing = [key for key in REQUIRED_KEYS if key not in data]
    if missing:
        raise InputFileError(p, f"not an SMPL model: missing {', '.join(missing)}")
    out: dict[str, Any] = dict(data)
    for key in REQUIRED_KEYS:
        try:
            out[key] = np.asarray(data[key], dtype=np.int64 if key in ("f", "kintree_table") else np.float64)
        except (TypeError, ValueError) as exc:
            raise InputFileError(p, f"{key} is not a numeric array ({exc})") from exc
    v, faces = out["v_template"], out["f"]
    n = _check_mesh(p, v, faces, "v_template", "f")
    expected = {
        "weights": (n, NUM_JOINTS),
        "J_regressor": (NUM_JOINTS, n),
        "kintree_table": (2, NUM_JOINTS),
    }
    for key, shape in expected.items():
        if out[key].shape != shape:
            raise InputFileError(p, f"{key} must have shape {shape} (SMPL has 24 joints), got {out[key].shape}")
    for key, width in (("shapedirs", None), ("posedirs", 9 * (NUM_JOINTS - 1))):
        arr = out[key]
        if arr.ndim != 3 or arr.shape[:2] != (n, 3) or (width is not None and arr.shape[2] != width):
            want = f"({n}, 3, {width if width is not None else 'B'})"
            raise InputFileError(p, f"{key} must have shape {want}, got {arr.shape}")
    if out["shapedirs"].shape[2] < 1:
        raise InputFileError(p, "shapedirs holds no shape directions")
    parents = out["kintree_table"][0].copy()
    parents[0] = -1
    if any(not (-1 <= parents[j] < j) for j in range(NUM_JOINTS)):
        raise InputFileError(p, "kintree_table: every joint's parent must come before it")
    for key in REQUIRED_KEYS:
        if out[key].dtype.kind == "f" and not np.all(np.isfinite(out[key])):
            raise InputFileError(p, f"{key} holds NaN or infinite values")
    return out


def _first_key(data: dict[str, Any], names: tuple[str, ...]) -> str | None:
    return next((name for name in names if name in data), None)


def _rigged_array(p: Path, data: dict[str, Any], names: tuple[str, ...], dtype: Any) -> np.ndarray:
    key = _first_key(data, names)
    try:
        arr = np.asarray(data[key], dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise InputFileError(p, f"{key} is not a numeric array ({exc})") from exc
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise InputFileError(p, f"{key} holds NaN or infinite values")
    return arr


def _rigged_parents(p: Path, data: dict[str, Any]) -> np.ndarray:
    """``(J,)`` parents from ``kintree_table (2, J)`` or ``parents (J,)``, root (index 0) = -1."""
    key = _first_key(data, RIGGED_KEYS["parents"])
    raw = np.asarray(data[key])
    if raw.dtype.kind not in "iu":
        raise InputFileError(p, f"{key} must hold integers, got {raw.dtype}")
    table = raw.astype(np.int64)
    if key == "kintree_table":
        if table.ndim != 2 or table.shape[0] != 2:
            raise InputFileError(p, f"kintree_table must have shape (2, J), got {table.shape}")
        table = table[0]
    if table.ndim != 1:
        raise InputFileError(p, f"parents must have shape (J,), got {table.shape}")
    parents = table.copy()
    if len(parents):
        parents[0] = -1  # the root's entry is -1, or 2**32 - 1 in SMPL's uint32 table: ignored
    return parents


def _check_rigged_arrays(p: Path, data: dict[str, Any]) -> dict[str, Any]:
    """A rigged mesh's arrays, normalised to the names listed in :func:`load_model_data`."""
    missing = [
        f"{role} ({' or '.join(names)})"
        for role, names in RIGGED_KEYS.items()
        if _first_key(data, names) is None and not (role == "joints" and "J_regressor" in data)
    ]
    if missing:
        raise InputFileError(
            p, f"not an SMPL model (no shapedirs) nor a rigged mesh: missing {', '.join(missing)}"
        )
    v = _rigged_array(p, data, RIGGED_KEYS["vertices"], np.float64)
    faces = _rigged_array(p, data, RIGGED_KEYS["faces"], np.int64)
    weights = _rigged_array(p, data, RIGGED_KEYS["weights"], np.float64)
    parents = _rigged_parents(p, data)
    n = _check_mesh(p, v, faces, "vertices", "faces")
    if len(parents) != NUM_JOINTS:
        raise InputFileError(p, f"the skeleton has {len(parents)} joints; nrtool poses SMPL's {NUM_JOINTS} (72-d poses)")
    if any(not 0 <= parents[j] < j for j in range(1, NUM_JOINTS)):
        raise InputFileError(p, "parents: every joint's parent must come before it (root first)")
    if weights.shape != (n, NUM_JOINTS):
        raise InputFileError(p, f"weights must have shape ({n}, {NUM_JOINTS}) (a weight per vertex and joint), got {weights.shape}")
    if weights.min() < -1e-6 or np.abs(weights.sum(axis=1) - 1.0).max() > 1e-3:
        raise InputFileError(p, "weights must be non-negative and sum to 1 for every vertex")
    out: dict[str, Any] = {k: v_ for k, v_ in data.items() if k.startswith(VERTEX_IDS_PREFIX)}
    out.update(v_template=v, f=faces, weights=weights, parents=parents)
    out["kintree_table"] = np.stack([parents, np.arange(NUM_JOINTS)])
    if "J_regressor" in data:
        regressor = _rigged_array(p, data, ("J_regressor",), np.float64)
        if regressor.shape != (NUM_JOINTS, n):
            raise InputFileError(p, f"J_regressor must have shape ({NUM_JOINTS}, {n}), got {regressor.shape}")
        out["J_regressor"] = regressor
    if _first_key(data, RIGGED_KEYS["joints"]) is not None:
        joints = _rigged_array(p, data, RIGGED_KEYS["joints"], np.float64)
        if joints.shape != (NUM_JOINTS, 3):
            raise InputFileError(p, f"joints must have shape ({NUM_JOINTS}, 3), got {joints.shape}")
    else:
        joints = out["J_regressor"] @ v
    out["J"] = joints
    if "posedirs" in data:
        posedirs = _rigged_array(p, data, ("posedirs",), np.float64)
        if posedirs.shape != (n, 3, 9 * (NUM_JOINTS - 1)):
            raise InputFileError(p, f"posedirs must have shape ({n}, 3, {9 * (NUM_JOINTS - 1)}), got {posedirs.shape}")
        out["posedirs"] = posedirs
    return out


def _vertex_ids(p: Path, data: dict[str, Any]) -> dict[str, int] | None:
    """smplx ``vertex_ids`` for the extra keypoints: stored ones, SMPL's, or None (no extras)."""
    stored = {k[len(VERTEX_IDS_PREFIX):]: int(np.asarray(v).reshape(-1)[0]) for k, v in data.items() if k.startswith(VERTEX_IDS_PREFIX)}
    n = len(data["v_template"])
    if stored:
        missing = [name for name in EXTRA_VERTEX_NAMES if name not in stored]
        if missing:
            raise InputFileError(p, f"{VERTEX_IDS_PREFIX}* lacks {', '.join(missing)}")
        if any(not 0 <= i < n for i in stored.values()):
            raise InputFileError(p, f"{VERTEX_IDS_PREFIX}* names vertices that do not exist")
        return stored
    return None  # SMPL topology: smplx's own table applies; other topologies get no keypoints


# --------------------------------------------------------------------------------------------
# Forward pass
# --------------------------------------------------------------------------------------------


@dataclass
class BodyOutput:
    """A batch of posed bodies (torch tensors, differentiable).

    Attributes:
        vertices: ``(B, V, 3)`` posed vertices (translation included).
        joints: ``(B, 24, 3)`` posed SMPL joints.
        transforms: ``(B, 24, 4, 4)`` rigid transform ``A`` of each joint: maps rest-pose
            (shaped) coordinates to posed ones, translation included; skinning blends these.
        normals: ``(B, V, 3)`` unit vertex normals of the posed mesh.
        rest_joints: ``(B, 24, 3)`` joints of the shaped body in the rest (T) pose.
        keypoints: ``(B, K, 3)`` smplx's extra vertex keypoints (K = 21, or 0 when the model
            names none).
    """

    vertices: "torch.Tensor"
    joints: "torch.Tensor"
    transforms: "torch.Tensor"
    normals: "torch.Tensor"
    rest_joints: "torch.Tensor"
    keypoints: "torch.Tensor"


def vertex_normals(vertices: "torch.Tensor", faces: "torch.Tensor") -> "torch.Tensor":
    """Area-weighted unit vertex normals: ``(B, V, 3)`` vertices, ``(F, 3)`` faces -> ``(B, V, 3)``."""
    import torch

    a, b, c = (vertices[:, faces[:, k]] for k in range(3))
    face_normals = torch.linalg.cross(b - a, c - a, dim=-1)  # length = 2 x area: area weighting
    normals = torch.zeros_like(vertices)
    for k in range(3):
        normals.index_add_(1, faces[:, k], face_normals)
    return torch.nn.functional.normalize(normals, dim=-1, eps=1e-12)


class BodyModel:
    """A body model file, posed in batches: an SMPL model through ``smplx.SMPL``, or a rigged mesh.

    An SMPL model has a shape space (``betas``) and pose correctives; a **rigged mesh**
    (vertices, faces, skinning weights, rest joints, parents; optional ``posedirs``) is posed
    by linear blend skinning with smplx's own rotation and kinematic-chain functions, and has
    no shape space: ``num_betas`` is 0 and non-zero betas are refused (see :meth:`forward`).
    Both give the same :class:`BodyOutput`.

    Args:
        path: ``.pkl``/``.npz`` model file, or a folder holding one per gender.
        gender: which file of a folder to read (ignored for a file).
        num_betas: shape coefficients used (at most what the file has; 0 for a rigged mesh).
        device: torch device (string or ``torch.device``).

    Attributes:
        kind: ``"smpl"`` or ``"rigged"``.
        notes: what was assumed while loading (for the user), e.g. a non-SMPL kinematic tree.
    """

    def __init__(self, path: PathLike, gender: str = "neutral", num_betas: int = 10, device: Any = "cpu") -> None:
        import torch

        self.path = resolve_model_path(path, gender)
        self.gender = gender
        self.device = torch.device(device)
        data = load_model_data(self.path, gender)
        self.kind = model_kind(data)
        self.notes: list[str] = []
        vertex_ids = _vertex_ids(self.path, data)
        self.faces = np.asarray(data["f"], dtype=np.int64)
        self.weights = np.asarray(data["weights"], dtype=np.float64)
        self.v_template = np.asarray(data["v_template"], dtype=np.float64)
        self.faces_tensor = torch.as_tensor(self.faces, device=self.device)
        self.smpl: Any = None
        if self.kind == "smpl":
            self._init_smpl(data, vertex_ids, num_betas)
        else:
            self._init_rigged(data, vertex_ids)

    def _init_smpl(self, data: dict[str, Any], vertex_ids: dict[str, int] | None, num_betas: int) -> None:
        import smplx
        import torch
        from smplx.utils import Struct

        num_betas = max(1, min(int(num_betas), data["shapedirs"].shape[2]))
        struct = Struct(**{key: data[key] for key in REQUIRED_KEYS})
        # smplx prints a warning about 10-coefficient models on stdout; keep stdout for results.
        with contextlib.redirect_stdout(io.StringIO()):
            smpl = smplx.SMPL(
                model_path=str(self.path),
                data_struct=struct,
                num_betas=num_betas,
                gender=self.gender,
                vertex_ids=vertex_ids if vertex_ids is not None else _no_extra_ids(data),
                use_hands=True,
                use_feet_keypoints=True,
                create_betas=False,
                create_global_orient=False,
                create_body_pose=False,
                create_transl=False,
                dtype=torch.float32,
            )
        self.has_keypoints = vertex_ids is not None or len(data["v_template"]) == 6890
        self.smpl = smpl.to(self.device)
        self.num_betas = int(self.smpl.num_betas)
        self.parents = np.asarray(self.smpl.parents.cpu().numpy(), dtype=np.int64)

    def _init_rigged(self, data: dict[str, Any], vertex_ids: dict[str, int] | None) -> None:
        import torch

        def tensor(array: np.ndarray) -> "torch.Tensor":
            return torch.as_tensor(np.asarray(array, dtype=np.float32), device=self.device)

        self.num_betas = 0
        self.parents = np.asarray(data["parents"], dtype=np.int64)
        self._parents_t = torch.as_tensor(self.parents, device=self.device)
        self._rest_joints = tensor(data["J"])
        self._v_template_t = tensor(self.v_template)
        self._weights_t = tensor(self.weights)
        # As smplx stores them: (207, V * 3), so that pose features (B, 207) @ posedirs -> offsets.
        posedirs = data.get("posedirs")
        self._posedirs = None if posedirs is None else tensor(np.reshape(posedirs, (-1, posedirs.shape[2])).T)
        if vertex_ids is None and len(self.v_template) == 6890:  # SMPL's topology: smplx's table
            from smplx.vertex_ids import vertex_ids as smplx_ids

            vertex_ids = dict(smplx_ids["smplh"])
        self.has_keypoints = vertex_ids is not None
        ids = [vertex_ids[name] for name in EXTRA_VERTEX_NAMES] if vertex_ids is not None else []
        self._keypoint_ids = torch.as_tensor(ids, dtype=torch.int64, device=self.device)
        if tuple(self.parents[1:]) != SMPL_PARENTS[1:]:
            self.notes.append(f"{self.path.name}: its kinematic tree is not SMPL's; SMPL/AMASS poses may not move it as they move SMPL")

    @property
    def num_vertices(self) -> int:
        return len(self.v_template)

    @property
    def has_shape_space(self) -> bool:
        """Whether ``betas`` change the body (an SMPL model) or not (a rigged mesh)."""
        return self.num_betas > 0

    def _betas(self, betas: Any, batch: int) -> "torch.Tensor":
        import torch

        b = torch.zeros((batch, self.num_betas), dtype=torch.float32, device=self.device)
        if betas is None:
            return b
        betas = torch.as_tensor(betas, dtype=torch.float32, device=self.device)
        if betas.ndim == 1:
            betas = betas[None].expand(batch, -1)
        if betas.ndim != 2 or betas.shape[0] != batch:
            raise NrtoolError(f"betas must have shape (B,) or ({batch}, B), got {tuple(betas.shape)}")
        if not self.has_shape_space:
            if bool(torch.any(betas != 0)):
                raise InputFileError(self.path, "is a rigged mesh without a shape space (no shapedirs): betas must be zero or left out")
            return b
        k = min(betas.shape[1], self.num_betas)
        b = b.clone()
        b[:, :k] = betas[:, :k]
        return b

    def forward(self, poses: Any, betas: Any = None, trans: Any = None) -> BodyOutput:
        """Pose a batch: ``poses (B, 72)`` axis-angle, ``betas (nb,)`` or ``(B, nb)``, ``trans (B, 3)``.

        Betas beyond the model's count are ignored; missing ones are zero. A rigged mesh has
        no betas: any non-zero one raises :class:`InputFileError`. Differentiable.
        """
        import torch

        poses = torch.as_tensor(poses, dtype=torch.float32, device=self.device)
        if poses.ndim == 1:
            poses = poses[None]
        if poses.ndim != 2 or poses.shape[1] != POSE_DIM:
            raise NrtoolError(f"poses must have shape (B, {POSE_DIM}), got {tuple(poses.shape)}")
        batch = poses.shape[0]
        betas_t = self._betas(betas, batch)
        if trans is None:
            trans_t = torch.zeros((batch, 3), dtype=torch.float32, device=self.device)
        else:
            trans_t = torch.as_tensor(trans, dtype=torch.float32, device=self.device)
            if tuple(trans_t.shape) != (batch, 3):
                raise NrtoolError(f"trans must have shape ({batch}, 3), got {tuple(trans_t.shape)}")
        if self.kind == "smpl":
            vertices, joints, keypoints, transforms, rest_joints = self._forward_smpl(poses, betas_t, trans_t)
        else:
            vertices, joints, keypoints, transforms, rest_joints = self._forward_rigged(poses, trans_t)
        translate = torch.zeros_like(transforms)
        translate[:, :, :3, 3] = trans_t[:, None]
        transforms = transforms + translate
        normals = vertex_normals(vertices, self.faces_tensor)
        return BodyOutput(vertices, joints, transforms, normals, rest_joints, keypoints)

    __call__ = forward

    def _forward_smpl(self, poses: "torch.Tensor", betas: "torch.Tensor", trans: "torch.Tensor") -> tuple["torch.Tensor", ...]:
        """smplx's forward pass, plus its skinning transforms (without translation)."""
        import torch
        from smplx.lbs import (
            batch_rigid_transform,
            batch_rodrigues,
            blend_shapes,
            vertices2joints,
        )

        batch = poses.shape[0]
        out = self.smpl(betas=betas, global_orient=poses[:, :3], body_pose=poses[:, 3:], transl=trans)
        joints = out.joints[:, :NUM_JOINTS]
        keypoints = out.joints[:, NUM_JOINTS:] if self.has_keypoints else out.joints[:, :0]
        # A(beta, theta): the same smplx functions its lbs() uses, on the same inputs.
        v_shaped = self.smpl.v_template + blend_shapes(betas, self.smpl.shapedirs)
        rest_joints = vertices2joints(self.smpl.J_regressor, v_shaped)
        rot = batch_rodrigues(poses.reshape(-1, 3)).view(batch, NUM_JOINTS, 3, 3)
        _, transforms = batch_rigid_transform(rot, rest_joints, self.smpl.parents, dtype=torch.float32)
        return out.vertices, joints, keypoints, transforms, rest_joints

    def _forward_rigged(self, poses: "torch.Tensor", trans: "torch.Tensor") -> tuple["torch.Tensor", ...]:
        """Linear blend skinning of the rigged mesh: ``v = sum_j w_j A_j [v_rest + pose offsets; 1]``.

        The rotations and the kinematic chain are smplx's (``batch_rodrigues``,
        ``batch_rigid_transform``), so a rigged mesh made from an SMPL-format model poses
        exactly as smplx poses that model at zero betas.
        """
        import torch
        from smplx.lbs import batch_rigid_transform, batch_rodrigues

        batch = poses.shape[0]
        rot = batch_rodrigues(poses.reshape(-1, 3)).view(batch, NUM_JOINTS, 3, 3)
        rest_joints = self._rest_joints[None].expand(batch, -1, -1)
        joints, transforms = batch_rigid_transform(rot, rest_joints, self._parents_t, dtype=torch.float32)
        v_rest = self._v_template_t[None].expand(batch, -1, -1)
        if self._posedirs is not None:
            eye = torch.eye(3, dtype=torch.float32, device=self.device)
            features = (rot[:, 1:] - eye).reshape(batch, -1)  # (B, 207), zero in the rest pose
            v_rest = v_rest + (features @ self._posedirs).view(batch, -1, 3)
        blended = torch.einsum("vj,bjrc->bvrc", self._weights_t, transforms)  # (B, V, 4, 4)
        vertices = torch.einsum("bvrc,bvc->bvr", blended[..., :3, :3], v_rest) + blended[..., :3, 3]
        vertices = vertices + trans[:, None]
        joints = joints + trans[:, None]
        keypoints = vertices[:, self._keypoint_ids]
        return vertices, joints, keypoints, transforms, rest_joints

    def pose_sequence(
        self, poses: np.ndarray, betas: np.ndarray | None = None, trans: np.ndarray | None = None, batch_size: int = 64, advance: Any = None
    ) -> dict[str, np.ndarray]:
        """Pose ``T`` frames in batches; numpy in, numpy out (``vertices``, ``joints``, ``transforms``, ``normals``)."""
        import torch

        poses = np.asarray(poses, dtype=np.float32)
        frames = len(poses)
        results: dict[str, list[np.ndarray]] = {"vertices": [], "joints": [], "transforms": [], "normals": []}
        with torch.no_grad():
            for start in range(0, frames, batch_size):
                stop = min(frames, start + batch_size)
                b = None
                if betas is not None:
                    b = np.asarray(betas, dtype=np.float32)
                    b = b[start:stop] if b.ndim == 2 else b
                t = None if trans is None else np.asarray(trans, dtype=np.float32)[start:stop]
                out = self.forward(poses[start:stop], b, t)
                for key in results:
                    results[key].append(getattr(out, key).cpu().numpy())
                if advance is not None:
                    advance(stop - start)
        return {key: np.concatenate(parts) if parts else np.zeros((0,)) for key, parts in results.items()}

    def rest_joints(self, betas: np.ndarray | None = None) -> np.ndarray:
        """The 24 joints of the (shaped) body in the rest pose, ``(24, 3)``."""
        import torch
        from smplx.lbs import blend_shapes, vertices2joints

        with torch.no_grad():
            b = self._betas(None if betas is None else np.asarray(betas, np.float32), 1)
            if self.kind == "rigged":
                return self._rest_joints.cpu().numpy().astype(np.float64)
            v_shaped = self.smpl.v_template + blend_shapes(b, self.smpl.shapedirs)
            return vertices2joints(self.smpl.J_regressor, v_shaped)[0].cpu().numpy().astype(np.float64)

    def rest_pelvis(self, betas: np.ndarray | None = None) -> np.ndarray:
        """The root joint of the shaped body in the rest pose, ``(3,)`` (for exact axis changes)."""
        return self.rest_joints(betas)[0]


def _no_extra_ids(data: dict[str, Any]) -> dict[str, int]:
    """For a non-SMPL topology without stored ids: point every keypoint at vertex 0 (unused).

    smplx indexes its extra keypoints by SMPL's vertex ids, out of range on another mesh; the
    keypoints are then dropped from :class:`BodyOutput` (``has_keypoints`` is False).
    """
    if len(data["v_template"]) == 6890:
        from smplx.vertex_ids import vertex_ids

        return dict(vertex_ids["smplh"])
    return {name: 0 for name in EXTRA_VERTEX_NAMES}
