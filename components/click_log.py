"""Build's clicks in the order they were made: a page-wide log of its edit buttons' clicks.

A Streamlit button reports a click by a trigger on the next rerun request. When clicks come faster
than the page reruns (on a busy machine, a click every 0.3 s is enough), the requests are folded
into one, whose callbacks run in the page's order of the buttons, not in the order of the clicks,
and two clicks of one button count once. So the palette and the cards' buttons are left to draw
themselves, and this invisible component takes their clicks in the browser, before Streamlit sees
them, and sends the whole list of clicks not yet applied, each numbered. The list only grows
between two reruns, so whichever request the server keeps holds every click; the server applies
the ones it has not applied yet, in their order, and tells the browser which it has applied.

The browser only intercepts buttons whose keys the server listed on its last run; anything else is
Streamlit's as usual.
"""
from __future__ import annotations

import functools
import json
from collections.abc import Callable

import streamlit as st

from components import state
from pipelines.modelspec.spec import ModelSpec

COMPONENT_KEY = "build_clicks"
MAX_PENDING = 200  # clicks a browser may hold unapplied; the server refuses a longer list
MAX_KEY_LENGTH = 300

_JS = """
export default function (component) {
  const { setStateValue, data } = component;
  const log = window.__layerlabClickLog || (window.__layerlabClickLog = {
    epoch: Math.random().toString(36).slice(2) + Date.now().toString(36), seq: 0, pending: [], keys: new Set(),
  });
  log.send = setStateValue;
  log.keys = new Set((data && data.keys) || []);
  const applied = data && data.applied && data.applied.epoch === log.epoch ? data.applied.seq : 0;
  log.pending = log.pending.filter(([seq]) => seq > applied);
  if (log.installed) return;
  log.installed = true;
  document.addEventListener('click', (event) => {
    const button = event.target instanceof Element ? event.target.closest('button') : null;
    if (!button || button.disabled) return;
    const holder = button.closest('[class*="st-key-"]');
    const key = holder && [...holder.classList].map(c => c.startsWith('st-key-') ? c.slice(7) : null)
      .find(k => k && log.keys.has(k));
    if (!key) return;
    event.preventDefault();
    event.stopImmediatePropagation();
    if (log.pending.length >= %(max_pending)d) return;
    log.seq += 1;
    log.pending.push([log.seq, key]);
    log.send('clicks', { epoch: log.epoch, log: log.pending.slice() });
  }, true);
}
""" % {"max_pending": MAX_PENDING}

_component = st.components.v2.component("layerlab_click_log", js=_JS)


def _entries(value) -> tuple[str, list[tuple[int, str]]] | None:
    """The browser's (epoch, [(number, key), ...]), or None for anything else: it is user input."""
    if not isinstance(value, dict) or not isinstance(value.get("epoch"), str) or len(value["epoch"]) > 64:
        return None
    log = value.get("log")
    if not isinstance(log, list) or len(log) > MAX_PENDING:
        return None
    entries = []
    for item in log:
        if (not isinstance(item, list) or len(item) != 2 or not isinstance(item[0], int) or isinstance(item[0], bool)
                or not isinstance(item[1], str) or len(item[1]) > MAX_KEY_LENGTH):
            return None
        entries.append((item[0], item[1]))
    return value["epoch"], entries


Click = Callable[[ModelSpec, "str | None", str], "tuple[ModelSpec, str | None]"]


def record(keys: list[str], clicked: Click) -> None:
    """Mount the log; the browser intercepts the buttons with these `keys`. Each new click is
    applied in order, once, by `clicked(spec, insertion point, key)`, in a callback (so before the
    page draws), and the batch is written in one piece (`state.apply_click_batch`)."""
    epoch, seq = state.applied_clicks()
    _component(key=COMPONENT_KEY, data={"keys": sorted(keys), "applied": {"epoch": epoch, "seq": seq}},
               on_clicks_change=functools.partial(_apply_new_clicks, clicked), width="stretch", height=0)


def _apply_new_clicks(clicked: Click) -> None:
    result = state.widget_value(COMPONENT_KEY)
    value = result.get("clicks") if isinstance(result, dict) else getattr(result, "clicks", None)
    try:
        parsed = _entries(json.loads(value) if isinstance(value, str) else value)
    except ValueError:
        return
    if parsed is None:
        return
    epoch, entries = parsed
    applied_epoch, applied = state.applied_clicks()
    if epoch != applied_epoch:
        applied = 0
    spec, selected = state.spec(), state.selected_layer_name()
    last = applied
    for seq, key in sorted(entries):
        if seq > last:
            spec, selected = clicked(spec, selected, key)
            last = seq
    if last > applied:
        state.apply_click_batch(epoch, last, spec, selected)
