"""Image captions hold class names (an image folder's names are the user's): Markdown never forms."""
from streamlit.testing.v1 import AppTest


def gallery_page():
    import numpy as np

    from components import evaluation_view

    evaluation_view.gallery(np.zeros((1, 4, 4, 1), dtype=np.uint8),
                            ["true www.x.org: :red[y] 90% vs [z](http://h) 10%"])


def test_gallery_captions_are_plain_text():
    at = AppTest.from_function(gallery_page, default_timeout=60).run()
    assert not at.exception
    caption = at.main.children[0].proto.imgs[0].caption
    assert caption != "true www.x.org: :red[y] 90% vs [z](http://h) 10%"
    assert "red\\[y\\]" in caption and "\\[z\\]\\(http" in caption and "www\u2060" in caption
