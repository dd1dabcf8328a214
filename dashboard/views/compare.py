"""Compare: runs side by side, and small sweeps."""
import streamlit as st

st.title("Compare")
st.info("Coming in this release: compare runs side by side and launch small sweeps of learning rate, "
        "units and dropout. Meanwhile, every run is listed on the Train page.")
