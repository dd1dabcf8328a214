"""Test: try a finished model on drawings, uploads and the test set."""
import streamlit as st

st.title("Test")
st.info("Coming in this release: draw a digit or upload images and see what a finished run predicts, "
        "and evaluate it on the test set. Meanwhile, the Train page shows each run's test accuracy.")
