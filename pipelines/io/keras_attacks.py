"""Known attacks on Keras' loading, named before a `.keras` config is checked: so that a refused
file says what it is (a Lambda's stored code, a TFSMLayer, a file download, a lookup layer's
vocabulary path, an import of a Python module), not only which key was out of place. They are
found where Keras would import something (an object's class name, a function's name, its module)
and at `vocabulary`, never by matching words in free text, so harmless names pass.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pipelines.modelspec.limits import brief

LOOKUP = "a StringLookup/IndexLookup layer, whose vocabulary path reads files or URLs (CVE-2025-12058)"
LAMBDA = "a Lambda layer or function: it runs Python code stored in the file"
_NAMED_ATTACKS = {  # by the class or function name Keras would import, lower case
    "lambda": LAMBDA, "__lambda__": LAMBDA,
    "tfsmlayer": "a TFSMLayer: it loads an outside SavedModel (CVE-2026-1462)",
    "enable_unsafe_deserialization": "a call to enable_unsafe_deserialization, which turns Keras' safe mode "
                                     "off (CVE-2025-9906)",
    "get_file": "keras.utils.get_file, which downloads and writes files (CVE-2025-8747)",
    "stringlookup": LOOKUP, "indexlookup": LOOKUP, "integerlookup": LOOKUP,
}
_PYTHON_WORDS = {"os", "system", "builtins", "eval", "exec", "subprocess", "__import__", "posix", "posixpath",
                 "ntpath", "importlib", "pickle", "marshal", "shutil", "socket", "sys", "runpy", "functools",
                 "ctypes", "pathlib", "tempfile", "io"}


def dicts(data: Any) -> Iterator[dict]:
    """Every object in the data, depth first (the depth is already bounded)."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def named_attack(data: Any) -> str | None:
    """Why the config looks like a known attack, or None: read where Keras would import something
    (an object's class name, a function's name, its module) and at `vocabulary`, not in free text."""
    for item in dicts(data):
        if "vocabulary" in item:
            return f"the config has a `vocabulary` ({brief(item['vocabulary'])}): {LOOKUP}"
        module, class_name, config = item.get("module"), item.get("class_name"), item.get("config")
        named = config if class_name == "function" and isinstance(config, str) else class_name
        if not isinstance(named, str):
            continue
        qualified = f"{module}.{named}" if isinstance(module, str) else named
        if named.lower() in _NAMED_ATTACKS:
            return f"the config names {brief(qualified)}: {_NAMED_ATTACKS[named.lower()]}"
        if isinstance(module, str) and (set(module.split(".")) & _PYTHON_WORDS or
                                        (class_name == "function" and named in _PYTHON_WORDS)):
            return (f"the config names {brief(qualified)}, a Python module or function outside keras "
                    "(arbitrary import: CVE-2025-1550)")
    return None
