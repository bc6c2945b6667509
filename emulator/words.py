"""Word tokens: the one notion of a word of the fake models and of alloydb_ai_nl's composer.

Every fake that must look "sensible" (embeddings whose cosine follows shared words, a ranker that
scores by word overlap, a yes/no answer that checks whether a question and a text talk about the
same thing) and the NL composer (which words of a question match a template, a column, a
fragment) need the same notion of a word. This module is that notion and nothing else; it lives
outside ``emulator/fakes`` because the NL side uses it in live mode too, and the engine's side
imports nothing of the fakes:

- `words(text)`: lowercased word tokens (Unicode letters and digits).
- `stem(word)`: a crude English suffix stripper (cats -> cat, parties -> party, filed -> fil),
  enough that plurals and simple inflections meet.
- `content_stems(text)`: the stems of the words that carry meaning (stop words removed).
- `overlap(query, text)`: the share of the query's content stems found in the text, 0..1.

Known gaps: no real linguistics; non-English text is tokenized but neither stemmed nor filtered.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"\w+", re.UNICODE)

_STOP_WORDS_TEXT = """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers him his how i if in into is it its itself just me more most my
    no nor not of off on once only or other our ours out over own same she should so some such than
    that the their them then there these they this those through to too under until up very was we
    were what when where which while who whom why will with would you your yours"""
STOP_WORDS: frozenset[str] = frozenset(_STOP_WORDS_TEXT.split())


def words(text: str) -> list[str]:
    """Lowercased word tokens of `text`, in order."""
    return _WORD.findall(text.lower())


def stem(word: str) -> str:
    """Strip one common English suffix, keeping at least three letters."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith("sses"):
        return word[:-2]
    if len(word) > 5 and word.endswith("ing"):
        return word[:-3]
    if len(word) > 4 and word.endswith("ed"):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def content_stems(text: str, extra_stop_words: frozenset[str] = frozenset()) -> list[str]:
    """Stems of the meaningful words of `text`, in order, duplicates kept."""
    return [stem(w) for w in words(text) if w not in STOP_WORDS and w not in extra_stop_words]


def overlap(query: str, text: str, extra_stop_words: frozenset[str] = frozenset()) -> float:
    """Share of the query's distinct content stems that also occur in `text` (0 when none)."""
    wanted = set(content_stems(query, extra_stop_words))
    if not wanted:
        return 0.0
    found = set(content_stems(text, extra_stop_words))
    return len(wanted & found) / len(wanted)
