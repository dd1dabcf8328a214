"""Polling for a condition in tests that watch real worker processes, and the allowance a latency
bound needs on a busy machine."""
import os
import time


def wait_until(predicate, timeout, poll=0.2, *, seen=None):
    """`predicate()`'s first truthy value, polled every `poll` s; AssertionError after `timeout` s,
    saying what `seen()` returns then (what the test was watching), if given."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"not within {timeout} s" + (f"; seen: {seen()}" if seen is not None else ""))


def busy_factor() -> float:
    """How many times longer than at rest a busy process takes here now: the runnable processes per
    core over the last minute (the load average), at least 1. For the few tests whose subject is a
    latency: a bound measured at rest, times this, still holds with every core pinned (CI runs the
    suite beside two busy loops)."""
    return max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))
