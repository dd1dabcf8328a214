"""Polling for a condition in tests that watch real worker processes."""
import time


def wait_until(predicate, timeout, poll=0.2):
    """`predicate()`'s first truthy value, polled every `poll` s; AssertionError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"not within {timeout} s")
