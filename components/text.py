"""The one way user-supplied text (run, layer, dataset and file names, URL values, and messages that
echo them) reaches anything Streamlit renders as Markdown.

Streamlit renders Markdown in far more places than `st.markdown`: captions, headers, alerts,
toasts, metric labels and values, widget labels and help, image captions, progress text. There a
name such as `![x](http://host/t)` would have every viewer's browser fetch that address, and
`[a](http://host)`, a bare `http://host` or `:red[...]` would become a link or styled text.
`plain` returns text that Markdown shows exactly as written. Selectbox options and dataframe
cells are not Markdown: give them the text as it is.
"""
from __future__ import annotations

import re

# Every ASCII punctuation character that starts or closes Markdown, GitHub-flavoured Markdown
# (tables, strikethrough) or Streamlit's own syntax (`:material/..:`, `:red[..]`, `$math$`), and
# `&` for HTML entities. CommonMark lets a backslash escape any ASCII punctuation character.
_SPECIALS = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~$:@&=\^])")
# Bare `http://`, `www.` and `e@mail` become links, and `:smile:` an emoji, after escapes are
# undone, so a word joiner (invisible, and no break) goes where they would form.
WORD_JOINER = "\u2060"
_AUTOLINK_STARTS = re.compile(r"(?<=[:@])(?=\S)|(?<=www)(?=\.)", re.IGNORECASE)
_CODE_SPAN = re.compile(r"(`[^`]+`)")


def plain(text: object, *, keep_code: bool = False) -> str:
    """`text` escaped so that Markdown shows it as written, on one line (line breaks and runs of
    white space become one space).

    `keep_code` leaves well-formed single-backtick code spans as they are (Markdown shows their
    content literally anyway), for messages such as the validator's, which quote names that way.
    """
    flat = " ".join(str(text).split())
    if not keep_code:
        return _escape(flat)
    return "".join(part if _CODE_SPAN.fullmatch(part) else _escape(part) for part in _CODE_SPAN.split(flat))


def _escape(text: str) -> str:
    return _SPECIALS.sub(r"\\\1", _AUTOLINK_STARTS.sub(WORD_JOINER, text))
