"""Layerlab's entry point: the pages, and nothing else."""
import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `streamlit run` puts only dashboard/ on the path

st.set_page_config(page_title="Layerlab", page_icon=":material/stacks:", layout="wide")
st.navigation([
    st.Page("views/data.py", title="Data", icon=":material/image:"),
    st.Page("views/build.py", title="Build", icon=":material/stacks:"),
    st.Page("views/train.py", title="Train", icon=":material/monitoring:"),
    st.Page("views/test.py", title="Test", icon=":material/search:"),
    st.Page("views/compare.py", title="Compare", icon=":material/compare_arrows:"),
]).run()
