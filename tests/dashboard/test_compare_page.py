"""The Compare page through AppTest, on finished runs written directly into a temp store."""
import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from components import resources
from components.compare_view import _frame, _row
from pipelines.modelspec import edit
from pipelines.modelspec.presets import get_preset
from pipelines.runs.entities import MetricPoint, RunStatus
from pipelines.runs.sqlite_store import SQLiteRunStore
from tests.dashboard.rendered import shown

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
MLP = get_preset("mlp-128x2").spec


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("LAYERLAB_HOME", str(tmp_path / "home"))
    monkeypatch.setattr("pipelines.execution.scheduler.Scheduler.ensure_workers", lambda *a, **k: [])
    for cache in (resources.store, resources.scheduler, _frame, _row):
        cache.clear()
    with SQLiteRunStore(tmp_path / "home") as store:
        yield store
    for cache in (resources.store, resources.scheduler, _frame, _row):
        cache.clear()


def finished(store, name, spec, val_accuracy):
    run = store.create_run(name, "fashion_mnist", spec.to_dict(), total_epochs=len(val_accuracy))
    store.claim_next_run(1, 1)
    store.log_metrics(run.id, [MetricPoint("epoch", e, 10, metric, value, 100.0 + e)
                               for e, v in enumerate(val_accuracy)
                               for metric, value in (("val_accuracy", v), ("val_loss", 1 - v),
                                                     ("accuracy", v), ("loss", 1 - v))])
    store.finish_run(run.id, RunStatus.COMPLETED, metrics={"test_accuracy": val_accuracy[-1]})
    return run


def open_compare(run_ids=()):
    at = AppTest.from_file(APP, default_timeout=60)
    if run_ids:
        at.query_params["runs"] = ",".join(run_ids)
    return at.switch_page("views/compare.py").run()


def test_no_runs_says_where_to_start(store):
    at = open_compare()
    assert not at.exception
    assert "No runs yet" in at.info[0].value


def test_selected_runs_from_the_url_are_compared(store):
    slow = finished(store, "adam 1e-4", MLP.with_compile(learning_rate=1e-4), [0.70, 0.75, 0.78])
    fast = finished(store, "adam 1e-3", MLP, [0.80, 0.86, 0.85])
    wide = finished(store, "wide", edit.set_param(MLP, 1, "units", 512), [0.82, 0.87, 0.86])
    at = open_compare([slow.id, fast.id, wide.id, "../../etc", "zzz"])
    assert not at.exception
    assert at.subheader[0].value == "3 runs"
    curves = at.get("plotly_chart")[0]
    assert "adam 1e-4" in curves.proto.spec and "adam 1e-3" in curves.proto.spec
    texts = " ".join(t.value for t in at.text)
    assert "layer 2 Dense: units 128 -> 512" in texts
    assert at.query_params["runs"] in (f"{slow.id},{fast.id},{wide.id}", [f"{slow.id},{fast.id},{wide.id}"])  # malformed ids dropped


def test_fewer_than_two_selected_asks_for_more(store):
    run = finished(store, "only", MLP, [0.8])
    at = open_compare([run.id])
    assert not at.exception
    assert any("Select two or more runs" in c.value for c in at.caption)


def test_rename_tag_note_and_delete_with_confirmation(store):
    first = finished(store, "first", MLP, [0.8, 0.82])
    second = finished(store, "second", MLP.with_compile(learning_rate=1e-2), [0.7, 0.72])
    at = open_compare([first.id])
    at.text_input(key=f"compare_name_{first.id}").set_value("![x](http://127.0.0.1:9/t) renamed")
    at.text_area(key=f"compare_note_{first.id}").set_value("baseline for the lr sweep")
    at.button(key=f"compare_save_{first.id}").click().run()
    assert not at.exception
    renamed = store.get_run(first.id)
    assert renamed.name == "![x](http://127.0.0.1:9/t) renamed" and renamed.note == "baseline for the lr sweep"
    at.text_input(key="compare_tags").set_value("lr, keep").run()
    at.button(key="compare_set_tags").click().run()
    assert store.get_run(first.id).tags == ("lr", "keep")
    assert at.button(key="compare_delete").disabled
    at.checkbox(key="compare_sure").check().run()
    at.button(key="compare_delete").click().run()
    assert not at.exception
    assert [run.id for run in store.list_runs()] == [second.id]
    assert not (store.home / "runs" / first.id).exists()


def test_tags_show_in_the_table_and_the_tag_filter_at_once(store):
    first = finished(store, "first", MLP, [0.8, 0.82])
    finished(store, "second", MLP.with_compile(learning_rate=1e-2), [0.7, 0.72])
    at = open_compare([first.id])
    assert at.multiselect(key="compare_tag").options == []
    at.text_input(key="compare_tags").set_value("keepme").run()
    at.button(key="compare_set_tags").click().run()
    assert not at.exception
    assert at.multiselect(key="compare_tag").options == ["keepme"]
    table = at.dataframe[0].value
    assert table.set_index("name").loc["first", "tags"] == "keepme"


def test_repeat_a_run_with_more_seeds_and_see_the_band(store, shared_datasets, monkeypatch):
    monkeypatch.setenv("LAYERLAB_DATA_DIR", str(shared_datasets))  # queueing checks the data is there
    best = finished(store, "adam 1e-3", MLP, [0.80, 0.86, 0.85])
    other = finished(store, "adam 1e-2", MLP.with_compile(learning_rate=1e-2), [0.75, 0.77, 0.78])
    at = open_compare([best.id])
    at.number_input(key="compare_seeds").set_value(2)
    at.button(key=f"compare_repeat_{best.id}").click().run()
    assert not at.exception
    group = store.list_runs(repeat_group=best.id)
    repeats = [run for run in group if run.id != best.id]
    assert sorted(run.model_spec.fit.seed for run in repeats) == [MLP.fit.seed + 1, MLP.fit.seed + 2]
    assert all(run.status is RunStatus.QUEUED for run in repeats)
    selection = at.query_params["runs"]
    selection = selection[0] if isinstance(selection, list) else selection
    assert selection.split(",") == [best.id] + [run.id for run in sorted(repeats, key=lambda r: r.model_spec.fit.seed)]
    # The repeats train: they then draw as one mean line with a band beside the other setting.
    for run, values in zip(sorted(repeats, key=lambda r: r.model_spec.fit.seed), ([0.78, 0.83], [0.82, 0.85])):
        store.claim_next_run(1, 1)
        store.log_metrics(run.id, [MetricPoint("epoch", e, 10, "val_accuracy", v, 200.0 + e) for e, v in enumerate(values)])
        store.finish_run(run.id, RunStatus.COMPLETED, metrics={})
    at = open_compare([best.id, *(run.id for run in repeats), other.id])
    at.toggle(key="compare_bands").set_value(True).run()
    assert not at.exception
    spec = at.get("plotly_chart")[0].proto.spec
    assert "mean of 3 seeds" in spec and "toself" in spec and "adam 1e-2" in spec


def test_which_setting_mattered_follows_the_chosen_metric(store):
    runs = [finished(store, f"lr {lr}", MLP.with_compile(learning_rate=lr), [0.70 + i / 100, 0.75 + i / 50])
            for i, lr in enumerate((1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1))]
    at = open_compare([run.id for run in runs])
    assert not at.exception

    def chart(name):
        return next(c.proto.spec for c in at.get("plotly_chart") if f"compare_{name}" in c.proto.id)

    assert "correlation with best validation accuracy" in chart("correlation")
    assert any("grey band (±0.70)" in c.value and "with 8 runs" in c.value for c in at.caption)
    [band] = json.loads(chart("correlation"))["layout"]["shapes"]
    assert band["x0"] == pytest.approx(-0.7046, abs=1e-3) and band["x1"] == pytest.approx(0.7046, abs=1e-3)
    at.selectbox(key="compare_metric_val_accuracy").set_value("validation loss").run()
    assert not at.exception
    assert "correlation with best validation loss" in chart("correlation")
    assert "best validation loss" in chart("parcoords")


def test_the_best_epoch_is_starred_by_time_and_on_the_smoothed_line(store):
    import base64

    import numpy as np

    first = finished(store, "first", MLP, [0.70, 0.90, 0.80])
    second = finished(store, "second", MLP.with_compile(learning_rate=1e-2), [0.60, 0.65, 0.70])
    at = open_compare([first.id, second.id])
    at.radio(key="compare_by").set_value("time")
    at.slider(key="compare_ema").set_value(0.5).run()
    assert not at.exception
    figure = json.loads(next(c.proto.spec for c in at.get("plotly_chart") if "compare_curves" in c.proto.id))
    def values(trace, axis):  # Plotly sends numpy arrays as base64 typed arrays
        data = trace[axis]
        if isinstance(data, dict):
            return np.frombuffer(base64.b64decode(data["bdata"]), dtype=data["dtype"]).tolist()
        return data

    line = next(t for t in figure["data"] if t.get("name") == "first" and t.get("mode") == "lines+markers")
    star = next(t for t in figure["data"] if t.get("name") == "first" and t.get("mode") == "markers")
    assert values(star, "x") == [values(line, "x")[1]]  # epoch 2, at its time
    assert values(star, "y") == pytest.approx([values(line, "y")[1]]) and values(star, "y")[0] < 0.9  # smoothed


def test_runs_without_validation_show_none_and_star_their_best_training_epoch(store):
    runs = []
    for name, accuracy in (("no split a", [0.70, 0.90, 0.80]), ("no split b", [0.60, 0.65, 0.70])):
        run = store.create_run(name, "fashion_mnist", MLP.with_fit(validation_split=0.0).to_dict(), total_epochs=3)
        store.claim_next_run(1, 1)
        store.log_metrics(run.id, [MetricPoint("epoch", e, 10, metric, value, 100.0 + e) for e, v in enumerate(accuracy)
                                   for metric, value in (("accuracy", v), ("loss", 1 - v))])
        store.finish_run(run.id, RunStatus.COMPLETED, metrics={"test_accuracy": accuracy[-1]})
        runs.append(run)
    at = open_compare([run.id for run in runs])
    assert not at.exception
    assert at.selectbox(key="compare_metric_accuracy").value == "training accuracy"
    table = next(frame.value for frame in at.dataframe if "best_val_accuracy" in frame.value.columns)
    assert table["best_val_accuracy"].isna().all()  # training accuracy is not shown as validation
    figure = json.loads(next(c.proto.spec for c in at.get("plotly_chart") if "compare_curves" in c.proto.id))
    star = next(t for t in figure["data"] if t.get("name") == "no split a" and t.get("mode") == "markers")
    assert star["x"] == [2] and star["y"] == [0.9]  # epoch 2, its best training accuracy


def test_a_run_whose_spec_cannot_be_read_is_named_and_the_rest_compares(store):
    good = finished(store, "good", MLP, [0.80, 0.86])
    wide = finished(store, "wide", edit.set_param(MLP, 1, "units", 512), [0.82, 0.87])
    broken = store.create_run("broken", "fashion_mnist", {"layers": "not a list"}, total_epochs=1)
    at = open_compare([good.id, wide.id, broken.id])
    assert not at.exception
    assert not at.error
    assert any("broken" in w.value and "cannot be read" in w.value for w in at.warning)
    assert "layer 2 Dense: units 128 -> 512" in " ".join(t.value for t in at.text)


def test_a_filter_that_hides_selected_runs_keeps_them_selected(store):
    first = finished(store, "first", MLP, [0.8, 0.82])
    second = finished(store, "second", MLP.with_compile(learning_rate=1e-2), [0.7, 0.72])
    at = open_compare([first.id, second.id])
    at.text_input(key="compare_q").set_value("second").run()
    assert not at.exception
    assert at.subheader[0].value == "2 runs"
    assert any("hidden by the filters" in c.value for c in at.caption)
    selection = at.query_params["runs"]
    assert (selection[0] if isinstance(selection, list) else selection) == f"{first.id},{second.id}"


def test_a_selection_over_the_limit_is_cut_and_says_so():
    from components.compare_view import merged_selection

    many = [f"{i:010x}" for i in range(25)]
    chosen, left_out = merged_selection(many[:3], many[1:23], ["hidden0001"])
    assert chosen[:2] == many[1:3] and len(chosen) == 20 and left_out == 3
    assert merged_selection(["a", "b"], ["b"], ["c"]) == (["b", "c"], 0)  # "a" unticked, "c" hidden


def test_deleting_several_runs_says_which_went_and_which_were_refused(store):
    done = finished(store, "done one", MLP, [0.8, 0.82])
    running = store.create_run("still running", "fashion_mnist", MLP.to_dict(), total_epochs=2)
    store.claim_next_run(1, 1)
    at = open_compare([done.id, running.id])
    at.checkbox(key="compare_sure").check().run()
    at.button(key="compare_delete").click().run()
    assert not at.exception
    assert [run.id for run in store.list_runs()] == [running.id]
    [notice] = [i.value for i in at.info if "Deleted" in i.value]
    assert "done one" in notice and "Not deleted" in notice and running.id in notice and "RUNNING" in notice
    selection = at.query_params["runs"]
    assert (selection[0] if isinstance(selection, list) else selection) == running.id


def test_the_table_reads_again_only_the_run_that_changed(store, monkeypatch):
    from components.compare_view import runs_table

    first = finished(store, "first", MLP, [0.80, 0.86])
    second = finished(store, "second", MLP.with_compile(learning_rate=1e-2), [0.70, 0.75])
    read = []
    real = SQLiteRunStore.get_metrics
    monkeypatch.setattr(SQLiteRunStore, "get_metrics", lambda self, run_id, **kw: read.append(run_id) or
                        real(self, run_id, **kw))
    table = runs_table(store)
    assert sorted(read) == sorted([first.id, second.id]) and table.loc[first.id, "best_val_accuracy"] == 0.86
    read.clear()
    store.set_note(first.id, "changed")
    store.log_metrics(first.id, [MetricPoint("epoch", 1, 10, "val_accuracy", 0.90, 102.0)])  # read with the change
    table = runs_table(store)
    assert read == [first.id]  # the other run's row came from the cache
    assert table.loc[first.id, "note"] == "changed" and table.loc[first.id, "best_val_accuracy"] == 0.90
    assert table.loc[second.id, "best_val_accuracy"] == 0.75
    read.clear()
    assert runs_table(store).equals(table) and read == []  # nothing changed: nothing read


def test_while_a_sweep_trains_the_curves_open_on_a_metric_with_points(store):
    first = store.create_run("cnn · lr=0.001", "fashion_mnist", MLP.to_dict(), total_epochs=3)
    second = store.create_run("cnn · lr=0.01", "fashion_mnist", MLP.with_compile(learning_rate=1e-2).to_dict(),
                              total_epochs=3)
    at = open_compare([first.id, second.id])
    assert not at.exception
    assert any("None of the selected runs has finished an epoch yet" in i.value for i in at.info)
    assert not [c for c in at.get("plotly_chart") if "compare_curves" in c.proto.id]  # no empty chart
    store.claim_next_run(1, 1)
    store.log_metrics(first.id, [MetricPoint("epoch", 0, 10, name, value, 100.0) for name, value in
                                 (("loss", 0.6), ("accuracy", 0.8), ("val_loss", 0.5), ("val_accuracy", 0.82))])
    at.run()  # the page redraws: the picker moves to the first epoch's validation accuracy
    assert not at.exception
    picker = at.selectbox(key="compare_metric_val_accuracy")
    assert picker.value == "validation accuracy"
    curves = json.loads(next(c.proto.spec for c in at.get("plotly_chart") if "compare_curves" in c.proto.id))
    assert "cnn · lr=0.001" in [trace.get("name") for trace in curves["data"]]
    assert any(shown(c.value) == "No epoch ended yet: cnn · lr=0.01." for c in at.caption)
    picker.set_value("training loss").run()  # the user's choice then holds as more epochs end
    store.log_metrics(first.id, [MetricPoint("epoch", 1, 10, "val_accuracy", 0.84, 101.0)])
    at.run()
    assert at.selectbox(key="compare_metric_val_accuracy").value == "training loss"


def test_the_baseline_tab_titles_its_results_and_gives_accuracy_in_points(store):
    baseline = finished(store, "adam 1e-3", MLP, [0.80, 0.86])
    other = finished(store, "adam 1e-2", MLP.with_compile(learning_rate=1e-2), [0.70, 0.75])
    at = open_compare([baseline.id, other.id])
    assert not at.exception
    delta = next(d for d in at.dataframe if "Test acc" in d.value.columns)
    assert list(delta.value.columns) == ["Name", "Val acc (best)", "Test acc", "Val acc (last)", "Best epoch"]
    assert delta.value.set_index("Name").loc["adam 1e-2", "Val acc (best)"] == pytest.approx(-11.0)
    columns = {name: column for name, column in json.loads(delta.proto.columns).items() if name != "_index"}
    assert columns["Test acc"]["type_config"]["format"] == "%+.1f pts"
    assert columns["Best epoch"]["type_config"]["format"] == "%+d"
    assert columns["Val acc (best)"]["help"].startswith("Validation accuracy (best epoch): accuracy on the validation")
    assert any(shown(c.value).startswith("The baseline: validation accuracy (best epoch) 86.0 %, test accuracy 86.0 %")
               for c in at.caption)


def test_three_runs_draw_no_correlation_and_say_why(store):
    runs = [finished(store, f"lr {lr}", MLP.with_compile(learning_rate=lr), accuracy)
            for lr, accuracy in ((1e-4, [0.70, 0.75]), (1e-3, [0.80, 0.86]), (1e-2, [0.84, 0.85]))]
    at = open_compare([run.id for run in runs])
    assert not at.exception
    assert not [c for c in at.get("plotly_chart") if "compare_correlation" in c.proto.id]
    [why] = [i.value for i in at.info if "Which setting mattered" in i.value]
    assert "3 runs cannot separate a setting's effect from run-to-run noise" in why and "at least 8 runs" in why
    assert [c for c in at.get("plotly_chart") if "compare_parcoords" in c.proto.id]  # each run is still drawn


def test_the_table_leads_with_name_status_and_accuracy_and_each_name_with_what_differs(store):
    runs = [finished(store, f"Conv32-Pool-D128-Drop0.5-D10 · adam · lr={lr}", MLP.with_compile(learning_rate=lr),
                     [0.8, 0.8 + lr]) for lr in (0.0001, 0.001)]
    at = open_compare([run.id for run in runs])
    assert not at.exception
    table = at.dataframe[0]
    assert list(table.value.columns)[:5] == ["name", "status", "best_val_accuracy", "test_accuracy",
                                             "final_val_accuracy"]
    assert sorted(table.value["name"]) == ["lr=0.0001 · Conv32-Pool-D128-Drop0.5-D10 · adam",
                                           "lr=0.001 · Conv32-Pool-D128-Drop0.5-D10 · adam"]
    assert at.selectbox(key="compare_a").options[0].startswith("lr=0.0001 · Conv32")  # the pickers too
