"""Reading back what the pages send as Markdown, for assertions on escaped user text."""
import re
from collections.abc import Iterator

from google.protobuf.message import Message

from components.text import WORD_JOINER, plain

# Names, file names and URL values that Markdown would turn into an image, a link, styled text or HTML.
HOSTILE = ["![x](http://127.0.0.1:9/t)", "[a](http://x)", ":red[x]", "<img src=x>"]
# The fields of Streamlit's element messages that the browser renders as Markdown (selectbox
# options and dataframe cells are plain text, and are left out).
MARKDOWN_FIELDS = {"body", "label", "help", "caption", "text", "delta"}
_CODE_SPAN = re.compile(r"`[^`]+`")


def shown(markdown: str) -> str:
    """The text Markdown shows for a string made with `components.text.plain`."""
    return re.sub(r"\\(.)", r"\1", markdown).replace(WORD_JOINER, "")


def _strings(proto: Message, path: str) -> Iterator[tuple[str, str]]:
    for field, value in proto.ListFields():
        values = value if hasattr(value, "__len__") and not isinstance(value, (str, bytes, Message)) else [value]
        for item in values:
            if isinstance(item, Message):
                yield from _strings(item, f"{path}.{field.name}")
            elif isinstance(item, str) and field.name in MARKDOWN_FIELDS:
                yield f"{path}.{field.name}", item


def markdown_strings(at) -> list[tuple[str, str]]:
    """(where, Markdown) for every Markdown text on the page an AppTest ran."""
    def walk(node) -> Iterator[tuple[str, str]]:
        if getattr(node, "proto", None) is not None:
            yield from _strings(node.proto, type(node).__name__)
        for child in getattr(node, "children", {}).values():
            yield from walk(child)

    return list(walk(at._tree))


def showing(at, text: str) -> list[tuple[str, str]]:
    """The Markdown texts on the page that show `text` to the reader."""
    return [(where, markdown) for where, markdown in markdown_strings(at) if text in shown(markdown)]


def assert_shown_escaped(at, text: str) -> None:
    """`text` is on the page, and every Markdown showing it has it escaped (or in a code span,
    where Markdown is not read)."""
    found = showing(at, text)
    assert found, f"{text!r} is not on the page"
    for where, markdown in found:
        outside_code = _CODE_SPAN.sub("", markdown)
        assert plain(text) in outside_code or any(text in span for span in _CODE_SPAN.findall(markdown)), \
            (where, markdown)
        assert text not in outside_code, (where, markdown)
