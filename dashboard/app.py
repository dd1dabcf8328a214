"""Layerlab's entry point: the pages, each run behind the last guard (components/guard.py)."""
import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `streamlit run` puts only dashboard/ on the path

from components import resources  # noqa: E402  (needs the path above)
from components.guard import guarded  # noqa: E402

# A local icon: a Material one (":material/stacks:") makes the browser fetch it from fonts.gstatic.com.
st.set_page_config(page_title="Layerlab", page_icon=Path(__file__).with_name("favicon.svg"), layout="wide")
page = st.navigation([
    st.Page("views/data.py", title="Data", icon=":material/image:"),
    st.Page("views/build.py", title="Build", icon=":material/stacks:"),
    st.Page("views/train.py", title="Train", icon=":material/monitoring:"),
    st.Page("views/test.py", title="Test", icon=":material/search:"),
    st.Page("views/compare.py", title="Compare", icon=":material/compare_arrows:"),
])
with guarded(f"the {page.title} page"):
    page.run()
resources.keep_imports_out_of_collections()
