"""A count with its noun, written by one helper (:func:`scaloquant._words.counted`) where the
notes, the reports and the terminal lines each wrote "1 spectrum / 2 spectra" their own way."""

from __future__ import annotations

import pytest

from scaloquant._words import counted


@pytest.mark.parametrize(
    ("n", "noun", "plural", "words"),
    [
        (1, "spectrum", "spectra", "1 spectrum"),
        (2, "spectrum", "spectra", "2 spectra"),
        (0, "spectrum", "spectra", "0 spectra"),
        (1, "step", None, "1 step"),
        (3, "step", None, "3 steps"),
        (0, "polish iteration", None, "0 polish iterations"),
    ],
)
def test_counted_words_a_count_with_its_noun(n, noun, plural, words):
    assert counted(n, noun, plural) == words
