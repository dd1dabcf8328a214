"""Adding a dataset from a folder on this machine or from a `.zip` someone uploaded.

A zip is untrusted: `GuardedZip` refuses `..` and absolute names, symlinks, nested archives, too
many entries and bombs from its directory alone, before one byte is written. A zip that passes is
unpacked into a temporary folder inside the Layerlab home (never anywhere else), decoded once, and
that folder is removed whatever happens. Every refusal leaves nothing behind: the dataset appears
in one rename at the very end (see data/added.py).
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from pipelines.data import added
from pipelines.data.folders import Settings, decode_scan, scan_folder
from pipelines.errors import DatasetError
from pipelines.io.archives import ArchiveLimits, GuardedZip, is_zip

# (stage, done, total, seconds so far); stage is "unpack" or "decode".
Progress = Callable[[str, int, int, float], None]


def _is_zip_file(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return is_zip(handle.read(4))
    except OSError as error:
        raise DatasetError(f"Cannot read {str(path)!r}: {error.strerror}") from None


def add_dataset(name: str, source: str | os.PathLike | BinaryIO, settings: Settings, *,
                home: str | os.PathLike | None = None, what: str | None = None,
                progress: Progress | None = None, replace: bool = False,
                limits: ArchiveLimits | None = None) -> dict:
    """Add `source` (a folder, a .zip path or an open zip upload) as dataset `name`; its manifest.

    DatasetError or ArchiveError (both LayerlabError) with the reason when refused; then nothing
    is written.
    """
    added.check_name(name, home, replace=replace)
    what = what or (str(source) if isinstance(source, (str, os.PathLike)) else "the upload")
    with unpacked(source, home=home, what=what, progress=progress, limits=limits) as (folder, origin):
        scan = scan_folder(folder, what=what)  # a refusal names the upload, not its temporary folder
        if replace:  # before the decoding, which takes the time
            added.check_replacement(name, settings, scan.classes, home)
        on_image = (lambda done, total, seconds: progress("decode", done, total, seconds)) if progress else None
        decoded = decode_scan(scan, settings, on_image)
        return added.save(name, scan, decoded, settings, origin, home, replace=replace)


@contextlib.contextmanager
def unpacked(source: str | os.PathLike | BinaryIO, *, home: str | os.PathLike | None = None,
             what: str | None = None, progress: Progress | None = None,
             limits: ArchiveLimits | None = None) -> Iterator[tuple[Path, str]]:
    """(folder, origin) for a folder as it is, or for a checked zip unpacked into a temporary folder in
    the Layerlab home that is removed on leaving, whatever happens.

    The origin of a folder or zip on this machine is its resolved path, so the same source named
    relatively, absolutely or through a symlink is recognised as the same (`train --dataset
    folder:PATH` reuses a dataset by it); an uploaded zip's origin is its name, `what`."""
    origin = None
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        what = what or str(source)
        if path.is_dir():
            yield path, str(path.resolve())
            return
        if not path.is_file():
            raise DatasetError(f"{what!r} is neither a folder nor a file. Expected a folder of class folders or a .zip")
        if not _is_zip_file(path):
            raise DatasetError(f"{what!r} is not a .zip archive. Expected a folder of class folders or a .zip of one")
        origin = str(path.resolve())
    what = what or "the upload"
    with GuardedZip(source, repr(what), limits) as archive:
        root = added.datasets_dir(home)
        root.mkdir(parents=True, exist_ok=True)
        unpack_parent = Path(tempfile.mkdtemp(prefix=".unpacking-", dir=root))
        try:
            folder = unpack_parent / "files"
            on_file = (lambda done, total: progress("unpack", done, total, 0.0)) if progress else None
            archive.extract_to(folder, on_file=on_file)
            yield folder, origin or what
        finally:
            shutil.rmtree(unpack_parent, ignore_errors=True)
            _remove_if_empty(root)


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()  # only succeeds when nothing was added: a refused first import leaves no folder
    except OSError:
        pass
