"""Through the pages (AppTest) with real workers: photos added on Data, a small CNN trained from Build,
its test accuracy well above chance on Train."""
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from components import resources, state
from pipelines.data import added
from pipelines.data.locate import clear_cache
from pipelines.execution.scheduler import Scheduler, SchedulerSettings
from pipelines.modelspec.spec import ModelSpec
from pipelines.runs.drafts import Draft, DraftStore, new_draft_id
from pipelines.runs.entities import RunStatus
from pipelines.runs.sqlite_store import SQLiteRunStore
from tests.dashboard.test_data_add import fill_in
from tests.dashboard.test_data_page import APP, open_data
from tests.data.photo_folders import copy_classes

pytestmark = pytest.mark.slow
SPEC = Path(__file__).resolve().parents[1] / "cli" / "folder_cnn.json"


@pytest.fixture
def live_home(tmp_path, monkeypatch, shared_datasets):
    home = tmp_path / "home"
    monkeypatch.setenv("LAYERLAB_HOME", str(home))
    monkeypatch.setenv("LAYERLAB_DATA_DIR", str(shared_datasets))
    for cached in (resources.store, resources.scheduler, resources.dataset_overview):
        cached.clear()
    clear_cache()
    yield home
    Scheduler(SQLiteRunStore(home), SchedulerSettings()).end_workers(wait=30)
    for cached in (resources.store, resources.scheduler, resources.dataset_overview):
        cached.clear()
    clear_cache()
    added.clear_cache()


def test_photos_added_on_data_train_from_build_well_above_chance(live_home, shared_datasets, tmp_path):
    photos = copy_classes(shared_datasets, tmp_path / "photos", per_class=50)
    at = fill_in(open_data(), photos, "ui-clothes")
    assert [s.value for s in at.success] and not at.error
    draft = new_draft_id()
    spec = ModelSpec.from_json(SPEC.read_text()).with_fit(epochs=12)
    DraftStore.in_home().save(draft, Draft(spec=spec, dataset="ui-clothes"))

    build = AppTest.from_file(APP, default_timeout=60)
    build.switch_page("views/build.py")
    build.query_params["draft"] = draft
    build.run()
    assert not build.exception, build.exception
    build.button(key=state.key("build", "train")).click().run()
    assert not build.exception, build.exception
    (run,) = SQLiteRunStore(live_home).list_runs()
    assert run.dataset == "ui-clothes"
    done = resources.scheduler().wait_for(run.id, timeout=300)
    assert done.status == RunStatus.COMPLETED, done.error

    page = AppTest.from_file(APP, default_timeout=60)
    page.switch_page("views/train.py")
    page.query_params["run"] = run.id
    page.run()
    assert not page.exception, page.exception
    metrics = {m.label: m.value for m in page.metric}
    assert float(metrics["Test accuracy"].rstrip("%")) >= 60  # 3 classes: chance is 33%
