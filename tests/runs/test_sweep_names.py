"""What a sweep's runs are called when the user named none: never a setting they do not train with."""
from pipelines.modelspec import edit
from pipelines.modelspec.presets import get_preset
from pipelines.modelspec.sweep import parse_axis
from pipelines.runs.drafts import MAX_RUN_NAME
from pipelines.runs.sweeps import default_sweep_name, plan_runs

LENET = get_preset("lenet").spec
ARCH = "Conv6-Pool-Conv16-Pool-D120-D84-D10"


def test_the_default_name_leaves_out_what_the_sweep_varies():
    assert default_sweep_name(LENET, [parse_axis("batch_size=32,64")]) == f"{ARCH} · adam 1e-3"
    assert default_sweep_name(LENET, [parse_axis("lr=1e-4,1e-3")]) == f"{ARCH} · adam"
    assert default_sweep_name(LENET, [parse_axis("optimizer=sgd,adam")]) == f"{ARCH} · 1e-3"
    both = [parse_axis("optimizer=sgd,adam"), parse_axis("learning_rate=0.1,0.01")]
    assert default_sweep_name(LENET, both) == ARCH


def test_the_default_name_of_a_deep_model_fits_a_run_name():
    deep = LENET
    for _ in range(60):
        deep, _ = edit.insert_layer(deep, "Dense", 0)
    name = default_sweep_name(deep, [parse_axis("lr=1e-4,1e-3")])
    assert len(name) == MAX_RUN_NAME and name.endswith("…")


def test_planned_runs_carry_the_name_and_their_settings():
    planned = plan_runs(LENET, [parse_axis("lr=1e-4,1e-2")], repeats=2, name="my cnn")
    seeds = (LENET.fit.seed, LENET.fit.seed + 1)
    assert [entry.name for entry, _ in planned] == [f"my cnn · lr={lr} · seed {seed}" for lr in ("0.0001", "0.01")
                                                    for seed in seeds]
