"""The core's messages in a user's words: the section prefix, code names and "Received:" go."""
import pytest

from components.user_words import user_words
from pipelines.errors import SpecError
from pipelines.modelspec.spec import CompileSpec
from pipelines.runs.entities import clean_name


@pytest.mark.parametrize("message, expected", [
    ("compile: `learning_rate` must be a number from 1e-07 to 10. Received: learning_rate=50.0",
     "Learning rate must be a number from 1e-07 to 10; it is 50.0."),
    ("Layer 2 (Dense): `units` must be a positive integer. Received: units=0",
     "Layer 2 (Dense): units must be a positive integer; it is 0."),
    ("A run's name must be a non-empty text. Received: name=''", "A run's name must be a non-empty text; it is empty."),
    ("A run's name must be one line of at most 200 characters. Received: 250 characters",
     "A run's name must be one line of at most 200 characters; it has 250 characters."),
    ("Layer 3 (Dense) gets a 3-D tensor: add Flatten before it.", "Layer 3 (Dense) gets a 3-D tensor: add Flatten before it."),
])
def test_messages_lose_their_developer_shape(message, expected):
    assert user_words(message) == expected


def test_the_cores_own_errors_read_in_words():
    with pytest.raises(SpecError) as raised:
        CompileSpec(learning_rate=50.0)
    assert "Received" not in user_words(raised.value) and "`" not in user_words(raised.value)
    with pytest.raises(Exception) as raised:
        clean_name("")
    assert user_words(raised.value).endswith("; it is empty.")
