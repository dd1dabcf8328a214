"""Build drafts on disk: they round-trip with their undo history, stay bounded in number and size,
refuse ids that are not theirs before touching a path, and a damaged file is an error naming it."""
from __future__ import annotations

import json
import os
import time

import pytest

from pipelines.modelspec import edit
from pipelines.modelspec.presets import get_preset
from pipelines.runs import artifacts
from pipelines.runs.drafts import MAX_HISTORY, Draft, DraftError, DraftStore, new_draft_id, validate_draft_id


def a_draft(**changes) -> Draft:
    spec = get_preset("mlp-128x2").spec
    smaller = edit.delete_layer(spec, 1)
    values = dict(spec=spec.with_fit(epochs=3).with_compile(learning_rate=0.01), dataset="mnist",
                  history=(smaller, spec), insert_after="dense_1", run_name="my first model")
    return Draft(**{**values, **changes})


def test_a_draft_round_trips_with_its_history_settings_and_dataset(tmp_path):
    store = DraftStore(tmp_path)
    draft_id = new_draft_id()
    store.save(draft_id, a_draft())
    loaded = store.load(draft_id)
    assert loaded == a_draft()
    assert loaded.spec.fit.epochs == 3 and loaded.spec.compile.learning_rate == 0.01
    assert loaded.saved_at > 0


def test_a_missing_draft_is_none_and_latest_is_the_most_recently_saved(tmp_path):
    store = DraftStore(tmp_path)
    assert store.load(new_draft_id()) is None and store.latest() is None
    first, second = new_draft_id(), new_draft_id()
    store.save(first, a_draft(run_name="first"))
    store.save(second, a_draft(run_name="second"))
    os.utime(store.path(second), (time.time() - 60, time.time() - 60))
    assert store.latest() == (first, a_draft(run_name="first"))


@pytest.mark.parametrize("bad", ["../../etc/passwd", "ABCDEF123456", "0123456789", "0123456789abc", "", None, 12])
def test_ids_are_validated_before_they_touch_a_path(tmp_path, bad):
    store = DraftStore(tmp_path / "drafts")
    with pytest.raises(DraftError, match="12 hexadecimal characters"):
        validate_draft_id(bad)
    with pytest.raises(DraftError):
        store.save(bad, a_draft())
    with pytest.raises(DraftError):
        store.load(bad)
    assert not (tmp_path / "drafts").exists()


def test_at_most_keep_drafts_are_kept_and_the_oldest_go(tmp_path):
    store = DraftStore(tmp_path, keep=3)
    ids = [new_draft_id() for _ in range(5)]
    for age, draft_id in enumerate(ids):
        store.save(draft_id, a_draft())
        os.utime(store.path(draft_id), (time.time() - 100 + age, time.time() - 100 + age))
    assert store.ids() == ids[:1:-1]  # the three newest, newest first
    old = ids[0]
    store.save(old, a_draft())  # saving an old id again keeps it: it was just edited
    assert old in store.ids() and len(store.ids()) == 3


def test_a_draft_over_the_size_cap_loses_its_oldest_undo_steps_first(tmp_path):
    spec = get_preset("cifar-cnn").spec
    history = tuple(spec.with_fit(epochs=e) for e in range(1, MAX_HISTORY + 1))
    one_spec = len(json.dumps(spec.to_dict(), separators=(",", ":")))
    store = DraftStore(tmp_path, max_bytes=one_spec * 12)
    draft_id = new_draft_id()
    store.save(draft_id, Draft(spec=spec, dataset="cifar10", history=history))
    assert store.path(draft_id).stat().st_size <= one_spec * 12
    loaded = store.load(draft_id)
    assert loaded.spec == spec and 0 < len(loaded.history) < 12
    assert loaded.history == history[-len(loaded.history):]  # the newest steps are the ones kept


def test_a_spec_too_large_for_any_draft_is_refused_and_leaves_the_old_file(tmp_path):
    store = DraftStore(tmp_path, max_bytes=200)
    draft_id = new_draft_id()
    with pytest.raises(DraftError, match="too large to keep"):
        store.save(draft_id, a_draft())
    assert store.load(draft_id) is None


@pytest.mark.parametrize("content, expected", [
    ("{not json", "not valid JSON"),
    ("[" * 100_000, "nests"),
    (json.dumps({"version": 1, "dataset": "mnist", "spec": {"layers": "x"}}), "`layers` must be a list"),
    (json.dumps({"version": 1, "dataset": ["x"], "spec": {"layers": []}}), "no known dataset"),
    (json.dumps({"version": 2}), "not a version-1 draft"),
    (json.dumps({"version": 1, "dataset": "mnist", "spec": {"layers": []}, "history": [{}] * 51}), "history"),
])
def test_a_damaged_draft_is_an_error_naming_its_file_and_latest_skips_it(tmp_path, content, expected):
    store = DraftStore(tmp_path)
    good, bad = new_draft_id(), new_draft_id()
    store.save(good, a_draft())
    os.utime(store.path(good), (time.time() - 60, time.time() - 60))
    store.path(bad).write_text(content)
    with pytest.raises(DraftError, match=expected) as raised:
        store.load(bad)
    assert str(store.path(bad)) in str(raised.value)
    assert store.latest() == (good, a_draft())


def test_an_oversized_file_is_refused_before_it_is_read(tmp_path, monkeypatch):
    store = DraftStore(tmp_path, max_bytes=1000)
    draft_id = new_draft_id()
    store.path(draft_id).write_text(" " * 2000)
    monkeypatch.setattr("pathlib.Path.read_text", lambda *a, **k: pytest.fail("read an oversized draft"))
    with pytest.raises(DraftError, match="the limit is 1,000"):
        store.load(draft_id)


def test_a_failed_write_keeps_the_previous_draft_and_stale_temps_are_cleared(tmp_path, monkeypatch):
    store = DraftStore(tmp_path)
    draft_id = new_draft_id()
    store.save(draft_id, a_draft())
    stale = artifacts.temp_path(store.path(draft_id))
    stale.write_text("half")
    os.utime(stale, (time.time() - 600, time.time() - 600))
    store.save(new_draft_id(), a_draft())
    assert not stale.exists()
    monkeypatch.setattr(artifacts.os, "replace", lambda *a: (_ for _ in ()).throw(OSError(28, "No space")))
    with pytest.raises(OSError):
        store.save(draft_id, a_draft(run_name="changed"))
    assert store.load(draft_id) == a_draft()
