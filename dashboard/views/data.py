"""Data: where a new user starts. Pick a dataset and look at it: its classes, samples per class and
the class balance; download it when it is missing."""
import streamlit as st

from components import augmentation_view, dataset_import_view, dataset_view, resources, state
from components.resources import dataset_overview
from components.text import plain
from pipelines.data.locate import load
from pipelines.data.catalog import CATALOG, DatasetInfo
from pipelines.errors import DatasetError, LayerlabError

START_STEPS = (("views/data.py", "1 · Look at the data", ":material/image:"),
               ("views/build.py", "2 · Build a model", ":material/stacks:"),
               ("views/train.py", "3 · Train it", ":material/monitoring:"),
               ("views/test.py", "4 · Test it", ":material/search:"))


def start_here() -> None:
    """The path through the app, while no run exists yet (after that, the user knows it)."""
    try:
        if resources.store().list_runs(limit=1):
            return
    except LayerlabError:
        pass  # the store has its own message on the pages that use it
    with st.container(border=True, key=state.key("data", "start_here")):
        st.markdown("**New here? Start with these four steps.** Look at a dataset on this page, then build a "
                    "model on Build (one click loads a tutorial's model), train it and watch its curves, and "
                    "try it on Test by drawing a digit.")
        with st.container(horizontal=True):
            for page, label, icon in START_STEPS:
                st.page_link(page, label=label, icon=icon)


def missing(info: DatasetInfo, problem: DatasetError) -> None:
    """What to do about a dataset that is not on disk, first; where Layerlab looked, in an expander;
    and the download button. A failed download leads with its reason (the message's last line)."""
    st.warning(f"{info.title} is not on this computer (or its copy cannot be read). Download it through Keras, "
               "which needs internet access, or put its files in a data folder and point `LAYERLAB_DATA_DIR` at "
               "that folder.", icon=":material/cloud_download:")
    with st.expander("Where Layerlab looked, and the files it needs"):
        st.code(str(problem), language=None, wrap_lines=True)
    if not st.button(f"Download {info.title} through Keras", key=state.key("data", "download", info.name),
                     type="primary"):
        return
    with st.status(f"Downloading {info.title} ...", expanded=True) as status:
        try:
            load(info.name, download=True)
        except DatasetError as exc:
            status.update(label="The download failed", state="error")
            reason = str(exc).strip().splitlines()[-1]
            st.error(plain(reason, keep_code=True))
            with st.expander("Details"):
                st.code(str(exc), language=None, wrap_lines=True)
        else:
            status.update(label=f"{info.title} is ready", state="complete")
            dataset_overview.clear()
            st.rerun()


st.title("Data")
start_here()
dataset_import_view.add_panel()
names = list(CATALOG)
name = st.segmented_control("Dataset", names, default=state.dataset(), format_func=lambda n: CATALOG[n].title,
                            key=state.key("data", "dataset", state.dataset())) or state.dataset()
state.set_dataset(name)
info = CATALOG[name]
st.caption(f"{info.num_classes} classes · input {'×'.join(map(str, info.input_shape))} · "
           f"source: {info.source} · licence: {info.licence}")

try:
    overview = dataset_overview(name)
except DatasetError as exc:
    missing(info, exc)
    st.stop()

st.caption("Loaded from " + plain(f"`{overview['origin']}`", keep_code=True))
dataset_import_view.details(name)
if note := dataset_view.sample_note(info, overview):
    st.info(note, icon=":material/info:")
table, chart = st.columns([2, 3], gap="large")
counts = dataset_view.class_table(info, overview)
table.dataframe(counts, hide_index=True, width="stretch", column_config=dataset_view.table_columns(counts))
chart.plotly_chart(dataset_view.balance_chart(info, overview), key=state.key("data", "chart"))
st.subheader("Samples per class")
dataset_view.gallery(info, overview)
augmentation_view.dataset_preview(overview, info.class_names, info.input_shape)
