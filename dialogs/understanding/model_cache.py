"""The trained layer kept between starts: where (``~/.cache/ndrbot``, or ``$NDRBOT_CACHE_DIR``),
under a name made of the training data's digest and a hash of this package's code, and how it
is read and written.

Without it every start trains anew. A new version of the data, of any module of
``dialogs/understanding/``, of scikit-learn (which trained it), of numpy (whose arrays it holds)
or of Python makes a new name, so a stale layer is never loaded; and nothing is loaded from a
folder that others can write to. The versions are read from the installed packages' metadata:
importing scikit-learn to ask would cost a serving process 95 MB.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import sys
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import TypeVar

from dialogs.understanding.data import TrainingData

log = logging.getLogger(__name__)

_CACHE_VERSION = "2"  # 2: plain vocabularies and weights, no scikit-learn objects

T = TypeVar("T")


def cache_file(data: TrainingData) -> Path | None:
    """Where a layer trained on ``data`` is kept between starts (None: no usable folder)."""
    folder = Path(os.environ.get("NDRBOT_CACHE_DIR") or Path.home() / ".cache" / "ndrbot")
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        info = folder.stat()
    except OSError:
        return None
    if info.st_uid != os.getuid() or info.st_mode & 0o022:
        return None  # a folder others can write to: never load what it holds
    code = hashlib.sha256(_CACHE_VERSION.encode())
    for source in sorted(Path(__file__).parent.glob("*.py")):
        code.update(source.read_bytes())  # a new version of this code trains anew
    python = f"{sys.version_info[0]}.{sys.version_info[1]}"
    versions = f"{version('scikit-learn')}-{version('numpy')}-{python}"
    return folder / f"nlu-{data.digest}-{code.hexdigest()[:12]}-{versions}.pickle"


def load(path: Path, kind: type[T], fits: Callable[[T], bool]) -> T | None:
    """The ``kind`` of object kept at ``path``, if there is one and it ``fits`` (None: train)."""
    if not path.exists():
        return None
    try:
        with path.open("rb") as handle:
            found = pickle.load(handle)  # noqa: S301 - our own file, in a folder only we write
        if isinstance(found, kind) and fits(found):
            return found
    except Exception:  # a damaged or stale cache: train again
        log.warning("the language layer's cache could not be read; training again")
    return None


def write(path: Path, layer: object) -> None:
    """Write ``layer`` to ``path``: aside first, then moved in, so that a process reading it
    never sees half a file (two processes may write the same path at once)."""
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    try:
        with temporary.open("wb") as handle:
            pickle.dump(layer, handle, protocol=pickle.HIGHEST_PROTOCOL)
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


def store(path: Path, layer: object) -> None:
    """Keep ``layer`` at ``path`` and remove older versions (a failure is logged: the layer is
    then trained again at the next start)."""
    try:
        write(path, layer)
        for stale in path.parent.glob("nlu-*.pickle"):
            if stale != path:
                stale.unlink(missing_ok=True)  # an older version of the data or the code
    except OSError:
        log.warning("the language layer could not be cached", exc_info=True)
