"""The Test page's clothing bridge through AppTest: a Fashion-MNIST run on a server folder of clothing
photos shows the folder's accuracy beside the run's test accuracy, per class, and what the model sees."""
from components import state
from tests.dashboard.rendered import shown
from tests.dashboard.test_test_page import home_with, open_page  # noqa: F401 - the fixture is used by name
from tests.data.photo_folders import copy_classes
from tests.inference.test_folder_eval import FASHION, fashion_run  # noqa: F401 - the fixture is used by name


def test_a_fashion_mnist_run_on_a_folder_of_clothing_photos(home_with, fashion_run, shared_datasets, tmp_path):
    home, run = fashion_run
    home_with(home)
    folder = copy_classes(shared_datasets, tmp_path / "mine", classes=("pants", "dress", "hat"), per_class=4,
                          split="validation")
    at = open_page(run.id, tab="Evaluate")
    at.radio(key=state.key("test", "folder", "source")).set_value("A folder on this server").run()
    at.text_input(key=state.key("test", "folder", "path")).input(str(folder)).run()
    at.button(key=state.key("test", "folder", "go")).click().run()
    assert not at.exception, at.exception
    metrics = {shown(m.label): m.value for m in at.metric}
    assert metrics["Test accuracy on Fashion-MNIST"] == "80.0%"
    assert 0 <= float(metrics["Accuracy on your photos"].rstrip("%")) <= 100
    frame = next(d.value for d in at.dataframe if "Your class" in d.value.columns)
    assert list(frame["Your class"]) == ["dress", "pants"] and list(frame["Counted as"]) == ["Dress", "Trouser"]
    assert list(frame["Photos"]) == [4, 4]
    captions = [shown(c.value) for c in at.caption]
    assert "Left out, as the run has no such class: hat" in captions
    assert any("What the model sees" in m.value for m in at.markdown)
    answers = [shown(c.value).rsplit(" → ", 1)[1] for c in at.caption if " → " in shown(c.value)]
    assert len(answers) == 6 and all(answer in FASHION for answer in answers)  # 3 examples of each class
