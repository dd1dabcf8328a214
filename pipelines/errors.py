"""The exceptions Layerlab raises on bad input.

Every message names what was wrong and what is allowed, so the edge (a page or the CLI) can show
`str(error)` as it is: one `except LayerlabError` serves.
"""


class LayerlabError(Exception):
    """Base class: a problem a user can fix, with a message written for that user."""


class SpecError(LayerlabError):
    """A model spec (layers, compile or fit settings) is malformed or invalid."""


class DatasetError(LayerlabError):
    """A dataset is unknown, missing from every place it was looked for, or malformed."""


class RunNotFoundError(LayerlabError):
    """A run id is malformed or names no run in the store."""


class RunStateError(LayerlabError):
    """An action does not fit the run's status (e.g. resuming a COMPLETED run)."""


class InferenceError(LayerlabError):
    """A run's model cannot be loaded, or an input does not fit it."""


class UploadError(LayerlabError):
    """An uploaded file is empty, too large, not an allowed image format, or damaged."""


class ArchiveError(UploadError):
    """An archive (a dataset zip, a `.keras` file) is refused before anything in it is parsed or
    written: a path that leaves its folder, a link, a nested archive, or too many or too large entries."""


class StoreUnavailableError(LayerlabError):
    """The run store's database is missing, damaged or was replaced while in use; the message
    names the file and how to rebuild it from the run folders."""


class DiskFullError(LayerlabError):
    """A write failed because the disk is full; the message says how much space is left, and where."""


class CheckpointError(LayerlabError):
    """A run cannot resume: its checkpoints are missing, damaged or do not match their state."""
