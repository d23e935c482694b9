import pytest

from ferkit.labels import CLASS_NAMES, label_to_name, name_to_label


def test_fer2013_order():
    assert CLASS_NAMES == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


@pytest.mark.parametrize("i, name", list(enumerate(CLASS_NAMES)))
def test_round_trip(i, name):
    assert name_to_label(name) == i and label_to_name(i) == name
    assert name_to_label(name.upper()) == i and name_to_label(str(i)) == i


def test_bad_names():
    with pytest.raises(ValueError, match="unknown expression"):
        name_to_label("contempt")
    with pytest.raises(ValueError, match="outside"):
        label_to_name(7)
