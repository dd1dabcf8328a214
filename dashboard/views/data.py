"""Data: pick a dataset and look at it."""
import streamlit as st

from components import dataset_view, state
from components.figures.class_balance import distribution_chart
from components.resources import dataset_overview
from components.text import plain
from pipelines.data.locate import load
from pipelines.data.catalog import CATALOG
from pipelines.errors import DatasetError

st.title("Data")
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
    st.warning(plain(exc, keep_code=True))
    if st.button(f"Download {info.title} through Keras", key=state.key("data", "download", name), type="primary"):
        with st.status(f"Downloading {info.title} ...", expanded=True) as status:
            try:
                load(name, download=True)
            except DatasetError as exc:
                status.update(label="The download failed", state="error")
                st.error(plain(exc, keep_code=True))
            else:
                status.update(label=f"{info.title} is ready", state="complete")
                dataset_overview.clear()
                st.rerun()
    st.stop()

st.caption("Loaded from " + plain(f"`{overview['origin']}`", keep_code=True))
table, chart = st.columns([2, 3], gap="large")
table.dataframe(dataset_view.class_table(info, overview), hide_index=True, width="stretch")
chart.plotly_chart(distribution_chart(info, overview), key=state.key("data", "chart"))
st.subheader("Samples per class")
dataset_view.gallery(info, overview)
