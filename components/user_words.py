"""The core's messages in a user's words, for a page that shows one beside the control it is about.

Errors under pipelines/ name the setting and echo the value, as Keras' do ("compile: `learning_rate`
must be a number from 1e-07 to 10. Received: learning_rate=50.0"): right in a log or the CLI, but
developer output on a page. `user_words` rewrites that shape and keeps the rest as written.
"""
from __future__ import annotations

import re

_SECTION = re.compile(r"^(?:compile|fit|spec): ")
_CODE_NAME = re.compile(r"`([A-Za-z_][A-Za-z0-9_]*)`")
_RECEIVED = re.compile(r"\.?\s*Received: (?:[A-Za-z_][A-Za-z0-9_]*=)?(?P<value>.*?)\.?$")
_COUNT = re.compile(r"[\d,]+ [a-z]+")  # "250 characters"
_EMPTY = {"''", '""', "None", "[]", "()", "{}"}


def user_words(message: object) -> str:
    """`message` without its developer shape: no "compile:" prefix, `a_name` as "a name", and
    "Received: x=0" as "it is 0" ("it is empty" for an empty text)."""
    text = _SECTION.sub("", " ".join(str(message).split()))
    text = _CODE_NAME.sub(lambda match: match.group(1).replace("_", " "), text)
    received = _RECEIVED.search(text)
    if received:
        value = received["value"]
        said = "it is empty" if value in _EMPTY else f"it has {value}" if _COUNT.fullmatch(value) else f"it is {value}"
        text = f"{text[:received.start()]}; {said}."
    return text[:1].upper() + text[1:]

