"""The VADER sentiment lexicon (vaderSentiment, MIT licence): ~7,500 English words rated by people.

Read at training time only, from the package's own `vader_lexicon.txt` (nothing downloaded): the trainer
passes `valences()` to the fit, which copies the vocabulary's terms' valences into the model version
(`Vocabulary.lexicon`), so the predictor needs neither the package nor the file (nothing the predictor
imports imports this module). Hutto & Gilbert, "VADER: A Parsimonious Rule-based Model for Sentiment
Analysis of Social Media Text", ICWSM 2014.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import vaderSentiment  # type: ignore[import-untyped]  # only its data file is read (its __init__ is empty)

LEXICON_FILE = "vader_lexicon.txt"


@lru_cache(maxsize=1)
def valences() -> dict[str, float]:
    """Word → mean valence (-4 … +4), for the entries that are words (the emoticons are left out: the ETL
    keeps letters, digits and apostrophes only)."""
    text = resources.files(vaderSentiment).joinpath(LEXICON_FILE).read_text(encoding="utf-8")
    table: dict[str, float] = {}
    for line in text.splitlines():
        entry, valence, *_ = line.split("\t")
        if entry.replace("'", "").isalpha():
            table[entry] = float(valence)
    return table
