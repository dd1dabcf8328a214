"""The model a user is building on the Build page, kept on disk so that it outlives the browser tab.

A Streamlit session lives in the server's memory: a refresh, a new tab or a server restart starts
an empty one. A draft (the spec with its training settings, the dataset, the undo history, where
new layers go, the run name the user typed) is therefore written to `<home>/drafts/<id>.json`
after every change, and the page finds it again by the id in its URL, or else takes the most
recently edited one.

The folder is bounded, as anything a browser can make a server write must be: at most
`MAX_DRAFTS` files (the oldest are dropped), each at most `MAX_DRAFT_BYTES` (the oldest undo steps
are dropped first), read back through the same bounded JSON reader as a spec file. Ids are
validated before they touch a path. Pure: no Streamlit here.
"""
from __future__ import annotations

import json
import logging
import os
import re
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pipelines import paths
from pipelines.data.catalog import CATALOG
from pipelines.errors import LayerlabError
from pipelines.modelspec.limits import limits, load_spec_json
from pipelines.modelspec.spec import ModelSpec
from pipelines.runs.artifacts import FRESH_TEMP_SECONDS, TEMP_PREFIX, atomic_write_text

log = logging.getLogger(__name__)

DRAFTS_FOLDER = "drafts"
MAX_DRAFTS = 20  # one per browser session that edited something; a new tab reuses the newest
MAX_DRAFT_BYTES = 2 * 1024 * 1024
MAX_HISTORY = 50  # undo steps kept
MAX_RUN_NAME = 200  # characters of a run name a user typed
_ID_PATTERN = re.compile(r"[0-9a-f]{12}")
_VERSION = 1


class DraftError(LayerlabError):
    """A draft id is malformed, or a draft file cannot be read or is too large to keep."""


def new_draft_id() -> str:
    """12 hex characters: not a run id (10), so the two are never confused in a URL."""
    return uuid.uuid4().hex[:12]


def validate_draft_id(draft_id: Any) -> str:
    """Return `draft_id` if it is well formed; ids become file names, so nothing else may pass."""
    if not isinstance(draft_id, str) or not _ID_PATTERN.fullmatch(draft_id):
        raise DraftError("A draft id is 12 hexadecimal characters.")
    return draft_id


@dataclass(frozen=True)
class Draft:
    """Everything Build shows that the user made: `history` holds earlier specs, oldest first;
    `insert_after` names the layer new ones go after (None: at the end); an empty `run_name`
    means the default, a description of the spec."""

    spec: ModelSpec
    dataset: str
    history: tuple[ModelSpec, ...] = ()
    insert_after: str | None = None
    run_name: str = ""
    saved_at: float = field(default=0.0, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"version": _VERSION, "dataset": self.dataset, "insert_after": self.insert_after,
                "run_name": self.run_name, "spec": self.spec.to_dict(),
                "history": [spec.to_dict() for spec in self.history[-MAX_HISTORY:]]}

    @classmethod
    def from_dict(cls, data: Any, saved_at: float = 0.0) -> Draft:
        """A draft from its JSON object; the specs are checked as a loaded spec file is."""
        if not isinstance(data, dict) or data.get("version") != _VERSION:
            raise DraftError("it is not a version-1 draft.")
        dataset, insert_after, run_name = data.get("dataset"), data.get("insert_after"), data.get("run_name", "")
        if not isinstance(dataset, str) or dataset not in CATALOG:
            raise DraftError(f"it names no known dataset (dataset={str(dataset)[:40]!r}).")
        if insert_after is not None and not isinstance(insert_after, str):
            raise DraftError("its `insert_after` is not a layer name.")
        if not isinstance(run_name, str) or len(run_name) > MAX_RUN_NAME:
            raise DraftError(f"its `run_name` is not a text of at most {MAX_RUN_NAME} characters.")
        history = data.get("history", [])
        if not isinstance(history, list) or len(history) > MAX_HISTORY:
            raise DraftError(f"its `history` is not a list of at most {MAX_HISTORY} specs.")
        return cls(spec=ModelSpec.from_dict(data.get("spec")), dataset=dataset,
                   history=tuple(ModelSpec.from_dict(spec) for spec in history),
                   insert_after=insert_after, run_name=run_name, saved_at=saved_at)


class DraftStore:
    """Drafts as JSON files in one folder, written atomically, bounded in number and size."""

    def __init__(self, folder: str | os.PathLike, *, keep: int = MAX_DRAFTS, max_bytes: int = MAX_DRAFT_BYTES):
        self.folder = Path(folder)
        self.keep = keep
        self.max_bytes = max_bytes

    @classmethod
    def in_home(cls, home: str | os.PathLike | None = None) -> DraftStore:
        """The drafts beside the run store: `<LAYERLAB_HOME>/drafts`."""
        return cls(paths.home_dir(home) / DRAFTS_FOLDER)

    def path(self, draft_id: str) -> Path:
        return self.folder / f"{validate_draft_id(draft_id)}.json"

    def save(self, draft_id: str, draft: Draft) -> None:
        """Write the draft, dropping its oldest undo steps while it is over the size cap, then drop
        the oldest drafts beyond `keep`. Raises DraftError if the spec alone is over the cap."""
        target = self.path(draft_id)
        text = self._fitting_text(draft)
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(target, text)
        self._prune(keep_id=draft_id)

    def _fitting_text(self, draft: Draft) -> str:
        history = list(draft.history[-MAX_HISTORY:])
        while True:
            text = json.dumps(replace(draft, history=tuple(history)).to_dict(), separators=(",", ":"))
            if len(text.encode()) <= self.max_bytes:
                return text
            if not history:
                raise DraftError(f"The model is too large to keep as a draft (over {self.max_bytes:,} bytes).")
            del history[: max(1, len(history) // 4)]

    def load(self, draft_id: str) -> Draft | None:
        """The draft saved under `draft_id`, or None if there is none; DraftError if it is damaged."""
        target = self.path(draft_id)
        try:
            size = target.stat().st_size
            if size > self.max_bytes:
                raise DraftError(f"The draft {target} is {size:,} bytes; the limit is {self.max_bytes:,}.")
            text = target.read_text(encoding="utf-8")
            saved_at = target.stat().st_mtime
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise DraftError(f"The draft {target} could not be read: {exc}") from None
        bound = replace(limits(), max_bytes=self.max_bytes, max_depth=limits().max_depth + 2)
        try:
            return Draft.from_dict(load_spec_json(text, bound), saved_at=saved_at)
        except LayerlabError as exc:
            raise DraftError(f"The draft {target} could not be read: {exc}") from None

    def ids(self) -> list[str]:
        """The saved drafts' ids, most recently saved first."""
        found = []
        try:
            entries = list(self.folder.iterdir())
        except OSError:
            return []
        for entry in entries:
            if entry.suffix == ".json" and _ID_PATTERN.fullmatch(entry.stem):
                try:
                    found.append((entry.stat().st_mtime, entry.stem))
                except OSError:
                    continue  # deleted meanwhile by another session's prune
        return [draft_id for _, draft_id in sorted(found, reverse=True)]

    def latest(self) -> tuple[str, Draft] | None:
        """The most recently saved draft that can be read, with its id; damaged ones are skipped."""
        for draft_id in self.ids():
            try:
                draft = self.load(draft_id)
            except DraftError as exc:
                log.warning("Skipping a draft: %s", exc)
                continue
            if draft is not None:
                return draft_id, draft
        return None

    def _prune(self, keep_id: str) -> None:
        """Drop the oldest drafts beyond `keep` (never `keep_id`, just written) and temp files a
        killed writer left behind."""
        for draft_id in [d for d in self.ids() if d != keep_id][max(0, self.keep - 1):]:
            (self.folder / f"{draft_id}.json").unlink(missing_ok=True)
        now = time.time()
        for entry in self.folder.glob(f"{TEMP_PREFIX}*"):
            try:
                if now - entry.stat().st_mtime > FRESH_TEMP_SECONDS:
                    entry.unlink()
            except OSError:
                continue
