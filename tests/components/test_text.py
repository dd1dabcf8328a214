"""components.text.plain: user text shown by Markdown exactly as written, never as a link, an image,
HTML, styled text or a Streamlit directive."""
import pytest

from components.text import WORD_JOINER, plain

HOSTILE = [
    "![x](http://127.0.0.1:9/t)", "[a](http://x)", ":red[x]", "<img src=x>", ":material/delete:",
    "**bold** _it_ ~~gone~~ `code`", "$x^2$", "# heading", "> quote", "- item", "1. item", "| a | b |",
    "&lt;img src=x&gt;", "<http://x.org>", "[a]: http://x.org", "a\\", "\\[a](http://x)",
]


def markdown_it():
    module = pytest.importorskip("markdown_it")  # CommonMark, as Streamlit's parser reads it
    return module.MarkdownIt("commonmark")


def inline_tokens(markdown: str) -> list:
    tokens = markdown_it().parse(markdown)
    return [child for token in tokens for child in (token.children or [])] + tokens


@pytest.mark.parametrize("text", HOSTILE)
def test_commonmark_shows_hostile_text_as_written_and_nothing_else(text):
    escaped = plain(text)
    tokens = inline_tokens(escaped)
    kinds = {token.type for token in tokens}
    assert kinds <= {"paragraph_open", "paragraph_close", "inline", "text"}, (text, kinds)
    shown = "".join(token.content for token in tokens if token.type == "text")
    assert shown.replace(WORD_JOINER, "") == text


def test_every_markdown_special_is_escaped():
    assert plain("![x](http://h/t)") == f"\\!\\[x\\]\\(http\\:{WORD_JOINER}//h/t\\)"
    assert plain(":red[x]") == f"\\:{WORD_JOINER}red\\[x\\]"
    assert plain("<img src=x>") == "\\<img src\\=x\\>"
    assert plain("a*b_c`d~e|f$g#h") == "a\\*b\\_c\\`d\\~e\\|f\\$g\\#h"


def test_bare_addresses_and_shortcodes_cannot_form_after_escaping():
    """GitHub-flavoured Markdown links bare `http://`, `www.` and e-mail addresses, and Streamlit
    turns `:smile:` into an emoji, in the text left after escapes: a word joiner breaks each."""
    assert f"http\\:{WORD_JOINER}//" in plain("see http://x.org")
    assert f"www{WORD_JOINER}\\.x" in plain("www.x.org")
    assert f"WwW{WORD_JOINER}\\.x" in plain("WwW.x.org")
    assert f"a\\@{WORD_JOINER}b" in plain("a@b.org")
    assert plain(":smile:").startswith(f"\\:{WORD_JOINER}smile")
    assert plain("Received: 3") == "Received\\: 3"  # a colon before a space stays as it was


def test_line_breaks_and_runs_of_space_become_one_space():
    assert plain("a\n\n# b\r\n  c\u2028d\te") == "a \\# b c d e"
    assert plain("  padded  ") == "padded"


def test_plain_text_is_unchanged_and_anything_is_turned_into_text():
    assert plain("dense 1 run 7") == "dense 1 run 7"
    assert plain(ValueError("bad [x]")) == "bad \\[x\\]"
    assert plain(3.5) == "3\\.5"


def test_code_spans_can_be_kept_for_messages_that_quote_names_that_way():
    message = "Layer 2 (Dense): `units` must be a positive integer. Received: units='![x](http://h/t)'"
    kept = plain(message, keep_code=True)
    assert "`units`" in kept and "\\!\\[x\\]" in kept and "\\(Dense\\)" in kept
    kinds = {token.type for token in inline_tokens(kept)}
    assert kinds <= {"paragraph_open", "paragraph_close", "inline", "text", "code_inline"}


@pytest.mark.parametrize("text", ["`a` ![x](http://h/t) `b`", "``a`` [x](u)", "`a``b` <img>", "x\\`y` [z](u) `"])
def test_kept_code_spans_never_let_the_text_between_them_through(text):
    tokens = inline_tokens(plain(text, keep_code=True))
    assert {token.type for token in tokens} <= {"paragraph_open", "paragraph_close", "inline", "text",
                                                "code_inline"}
