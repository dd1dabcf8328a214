"""The last guard at each edge of the UI: a page run, and every fragment (which reruns on its own,
outside the page). An unexpected exception there becomes one short message on the page, and its
traceback goes to the server's log; no traceback or server path ever reaches a browser.

Streamlit's own control flow (`st.rerun`, `st.stop`, `st.switch_page`) raises exceptions derived
from BaseException, so `except Exception` lets them through untouched.
"""
from __future__ import annotations

import functools
import logging
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

import streamlit as st
from streamlit.errors import FragmentHandledException

from components.store_recovery import offer_rebuild
from components.text import plain
from pipelines.errors import StoreUnavailableError

log = logging.getLogger("layerlab.dashboard")
if not log.handlers:  # the server's stderr is its log; Streamlit configures only its own loggers
    _handler = logging.StreamHandler()
    _handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log.addHandler(_handler)
    log.setLevel(logging.INFO)

P = ParamSpec("P")
R = TypeVar("R")


def failure_text(where: str, incident: str) -> str:
    """What a user reads when `where` failed: no exception text (it may name paths or values)."""
    return (f"Something went wrong in {where}. Reloading the page may help; if it keeps happening, "
            f"the server log has the details under incident {incident}.")


@contextmanager
def guarded(where: str) -> Iterator[None]:
    """Run a block; an unexpected exception is logged with its traceback and shown as one short
    error naming `where` (a page title, or a part of a page) and an incident code for the log."""
    try:
        yield
    except FragmentHandledException:
        raise  # an unguarded fragment failed, and Streamlit has shown that already
    except StoreUnavailableError as exc:  # a fault a user can repair: say so, and offer the repair
        log.warning("The run store is unavailable in %s: %s", where, exc)
        offer_rebuild(exc, where)
    except Exception:
        incident = secrets.token_hex(4)
        log.exception("Unexpected error in %s (incident %s)", where, incident)
        st.error(plain(failure_text(where, incident)), icon=":material/error:")


def guard(where: str) -> Callable[[Callable[P, R]], Callable[P, R | None]]:
    """`guarded` as a decorator, for fragments: put it under `@st.fragment`."""

    def decorate(function: Callable[P, R]) -> Callable[P, R | None]:
        @functools.wraps(function)
        def run(*args: P.args, **kwargs: P.kwargs) -> R | None:
            with guarded(where):
                return function(*args, **kwargs)
            return None

        return run

    return decorate
