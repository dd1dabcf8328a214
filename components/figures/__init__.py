"""Pure Plotly figure builders: data in, `plotly.graph_objects.Figure` out.

Nothing in this package imports Streamlit (tests/components/figures checks it), so every chart the
pages draw is unit-tested without a Streamlit runtime; the modules beside it do the drawing.
"""
