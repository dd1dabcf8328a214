"""Guarded zip archives: every entry is checked before anything is read, parsed or written.

A dataset upload and a `.keras` model are both zips from someone else. `zipfile` trusts the
archive's own directory: names may climb out of the target folder (`../x`, `/etc/x`), entries
may be symlinks or archives inside the archive, and declared sizes may hide a bomb that inflates
a few kilobytes into gigabytes. `GuardedZip` refuses all of these from the directory alone, then
counts real bytes while reading, so a lying directory cannot push memory or disk past the caps.
"""
from __future__ import annotations

import os
import shutil
import stat
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from pipelines.errors import ArchiveError

# A local file header, or the end-of-directory record of an empty archive.
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
# First bytes of archive formats that must not hide inside an archive (zip, gzip, bzip2, xz, 7z, rar, tar).
_NESTED_MAGIC = (b"PK\x03\x04", b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"7z\xbc\xaf\x27\x1c", b"Rar!")
_TAR_MAGIC_OFFSET = 257
_NESTED_SUFFIXES = {".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar", ".jar", ".whl", ".keras"}
_CHUNK = 1 << 20
# Below this size a high compression ratio is normal (a text file, an empty image margin).
_RATIO_FLOOR_BYTES = 1 << 20


def _env_number(name: str, default: float, kind: type) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ArchiveError(f"`{name}` must be a positive {kind.__name__}. Received: {name}={raw!r}") from None
    if value <= 0:
        raise ArchiveError(f"`{name}` must be a positive {kind.__name__}. Received: {name}={raw!r}")
    return value


@dataclass(frozen=True)
class ArchiveLimits:
    """The caps an archive must stay under. Settings: LAYERLAB_ZIP_MAX_ENTRIES,
    LAYERLAB_ZIP_MAX_MB (total uncompressed) and LAYERLAB_ZIP_MAX_RATIO."""

    max_entries: int = 50_000
    max_total_bytes: int = 2 * 1024**3
    max_ratio: float = 200.0

    @classmethod
    def from_env(cls) -> ArchiveLimits:
        default = cls()
        return cls(
            max_entries=int(_env_number("LAYERLAB_ZIP_MAX_ENTRIES", default.max_entries, int)),
            max_total_bytes=int(_env_number("LAYERLAB_ZIP_MAX_MB", default.max_total_bytes / 1024**2, float)
                                * 1024**2),
            max_ratio=float(_env_number("LAYERLAB_ZIP_MAX_RATIO", default.max_ratio, float)),
        )


def _mb(size: int) -> str:
    return f"{size / 1024**2:,.1f} MB"


def is_zip(head: bytes) -> bool:
    return head[:4] in ZIP_MAGIC


def is_nested_archive(head: bytes) -> bool:
    """Whether a member's first bytes (at least 262 of them, for tar) start another archive."""
    return head.startswith(_NESTED_MAGIC) or head[_TAR_MAGIC_OFFSET:_TAR_MAGIC_OFFSET + 5] == b"ustar"


def check_name(name: str) -> str | None:
    """Why a member name may not be written under a folder, or None when it may."""
    if not name or "\x00" in name:
        return "an empty name or a NUL byte"
    if "\\" in name:
        return "a backslash (a Windows path)"
    path = PurePosixPath(name)
    if path.is_absolute() or (len(name) > 1 and name[1] == ":"):
        return "an absolute path"
    if ".." in path.parts:
        return "'..' (it would leave the folder)"
    return None


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


class GuardedZip:
    """A zip whose directory has passed the checks; read members with `read` or `extract_to`.

    `what` names the file in messages (the user's file name: shown as text by the caller).
    """

    def __init__(self, source: str | os.PathLike | BinaryIO, what: str, limits: ArchiveLimits | None = None):
        self.what = what
        self.limits = limits or ArchiveLimits.from_env()
        if isinstance(source, (str, os.PathLike)):
            with open(source, "rb") as handle:
                head = handle.read(4)
        else:
            position = source.tell()
            head = source.read(4)
            source.seek(position)
        if not is_zip(head):
            raise ArchiveError(f"{what} is not a zip archive (its first bytes are {head[:4]!r}).")
        try:
            self._zip = zipfile.ZipFile(source)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
            raise ArchiveError(f"{what} is not a readable zip archive: {error}") from None
        try:
            self.members = self._checked(self._zip.infolist())
        except ArchiveError:
            self._zip.close()
            raise

    def __enter__(self) -> GuardedZip:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._zip.close()

    def _checked(self, infos: list[zipfile.ZipInfo]) -> list[zipfile.ZipInfo]:
        limits, what = self.limits, self.what
        if len(infos) > limits.max_entries:
            raise ArchiveError(f"{what} holds {len(infos):,} entries; at most {limits.max_entries:,} are allowed.")
        seen: set[str] = set()
        total = packed = 0
        for info in infos:
            name = info.filename
            reason = check_name(name)
            if reason:
                raise ArchiveError(f"{what}: entry {name!r} has {reason}; only relative paths inside the archive are allowed.")
            if name in seen:
                raise ArchiveError(f"{what}: entry {name!r} appears twice.")
            seen.add(name)
            if _is_symlink(info):
                raise ArchiveError(f"{what}: entry {name!r} is a symbolic link; only plain files and folders are allowed.")
            if info.flag_bits & 0x1:
                raise ArchiveError(f"{what}: entry {name!r} is encrypted; only unencrypted archives are allowed.")
            if PurePosixPath(name).suffix.lower() in _NESTED_SUFFIXES and not info.is_dir():
                raise ArchiveError(f"{what}: entry {name!r} is an archive inside the archive; nested archives are not allowed.")
            if info.file_size > _RATIO_FLOOR_BYTES and info.file_size > limits.max_ratio * max(info.compress_size, 1):
                raise ArchiveError(
                    f"{what}: entry {name!r} inflates {info.file_size / max(info.compress_size, 1):,.0f} times "
                    f"({_mb(info.file_size)}); at most {limits.max_ratio:g} times is allowed.")
            total += info.file_size
            packed += info.compress_size
        if total > limits.max_total_bytes:
            raise ArchiveError(f"{what} would unpack to {_mb(total)}; at most {_mb(limits.max_total_bytes)} is allowed.")
        if total > _RATIO_FLOOR_BYTES and total > limits.max_ratio * max(packed, 1):
            raise ArchiveError(f"{what} inflates {total / max(packed, 1):,.0f} times; at most {limits.max_ratio:g} is allowed.")
        return infos

    def files(self) -> list[zipfile.ZipInfo]:
        return [info for info in self.members if not info.is_dir()]

    def _chunks(self, info: zipfile.ZipInfo, budget: int) -> Iterator[bytes]:
        """The member's bytes in chunks, never more than `budget` or than it declared."""
        allowed = min(budget, info.file_size)
        read = 0
        try:
            with self._zip.open(info) as member:
                while chunk := member.read(min(_CHUNK, allowed - read + 1)):
                    read += len(chunk)
                    if read > allowed:
                        raise ArchiveError(
                            f"{self.what}: entry {info.filename!r} holds more than the {_mb(allowed)} allowed for it.")
                    yield chunk
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as error:
            raise ArchiveError(f"{self.what}: entry {info.filename!r} cannot be read: {error}") from None

    def read(self, name: str, max_bytes: int) -> bytes:
        """One member's bytes, refused when it declares or holds more than `max_bytes`."""
        info = next((i for i in self.members if i.filename == name and not i.is_dir()), None)
        if info is None:
            raise ArchiveError(f"{self.what} has no entry {name!r}.")
        if info.file_size > max_bytes:
            raise ArchiveError(f"{self.what}: entry {name!r} is {_mb(info.file_size)}; at most {_mb(max_bytes)} is allowed.")
        return b"".join(self._chunks(info, max_bytes))

    def extract_to(self, dest: str | os.PathLike, members: list[zipfile.ZipInfo] | None = None,
                   on_file: Callable[[int, int], None] | None = None) -> list[Path]:
        """Write members under `dest` (created; must not exist yet), streaming and counting bytes.

        A nested archive found by its content, a path resolving outside `dest`, or more bytes than
        the cap remove everything written so far: a refused archive leaves nothing behind.
        """
        root = Path(dest)
        if root.exists():
            raise ArchiveError(f"Cannot unpack {self.what}: {root} already exists.")
        chosen = [info for info in (members if members is not None else self.members) if not info.is_dir()]
        budget = self.limits.max_total_bytes
        written: list[Path] = []
        root.mkdir(parents=True)
        resolved_root = root.resolve()
        try:
            for index, info in enumerate(chosen):
                target = (resolved_root / info.filename).resolve()
                if not target.is_relative_to(resolved_root):
                    raise ArchiveError(f"{self.what}: entry {info.filename!r} would be written outside its folder.")
                try:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    out = open(target, "xb")
                except (FileExistsError, NotADirectoryError, IsADirectoryError):
                    raise ArchiveError(f"{self.what}: entry {info.filename!r} clashes with another entry's path.") from None
                with out:
                    head = b""
                    for chunk in self._chunks(info, budget):
                        if len(head) < 512:
                            head += chunk[:512]
                            if is_nested_archive(head) and len(head) >= min(info.file_size, 262):
                                raise ArchiveError(f"{self.what}: entry {info.filename!r} is an archive inside the "
                                                   "archive; nested archives are not allowed.")
                        out.write(chunk)
                        budget -= len(chunk)
                written.append(target)
                if on_file is not None:
                    on_file(index + 1, len(chosen))
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        return written
