"""When each written word is spoken, from espeak-ng's word and phoneme events.

espeak-ng reports a *word* event where a word starts, but says some short phrases from its
pronunciation list as one unit ("on the", "of a", "I am") and reports one word event for the whole
phrase, so counting word events against written words fails ("5 words for 6"). Here:

1. each word event is matched to the written word at its character position; consecutive words without
   an event form a *group* with the word before them (the phrase espeak-ng said as one unit);
2. a group of several words is split with the phoneme events inside it: the phonemes of each word said
   alone (espeak-ng's own dictionary) are aligned to the group's phoneme events by edit distance, and
   a word starts at its first aligned phoneme (proportional to phoneme counts if the alignment gives a
   word nothing);
3. a word ends where the next starts, or earlier at a pause phoneme (``_``, ``_:``: a comma or the
   end of the sentence), so pauses belong to no word.

A word event comes before any pause or stop closure that precedes the word; a phoneme event after it
(espeak-ng's ``Generate``), so inside a group a word starts up to a closure (tens of ms) later than a
word event would put it. Times are in samples of the engine's rate.
"""

from __future__ import annotations

from typing import Callable, Sequence

from otoscope.stimuli.espeak import Event
from otoscope.stimuli.words import Token


def is_pause(name: str) -> bool:
    """True for espeak-ng's pause phonemes (``_``, ``_:``, ``_!``...)."""
    return name.startswith("_")


def _token_at(tokens: Sequence[Token], position: int) -> int | None:
    """The token whose text contains ``position``, else the next one (events can point at punctuation)."""
    for i, token in enumerate(tokens):
        if position < token.end:
            return i
    return None


def _cost(a: str, b: str) -> float:
    if a == b:
        return 0.0
    if a.rstrip("0123456789#") == b.rstrip("0123456789#"):  # the same phoneme, another variant (@ and @2)
        return 0.25
    return 1.0


def split_group(names: Sequence[str], parts: Sequence[Sequence[str]]) -> list[int]:
    """Where each part starts in ``names``: the phoneme names spoken for a group, ``parts`` the names
    of each word said alone → one index per part (the first is 0), increasing.

    Edit-distance alignment; a part that the alignment leaves empty gets a share of the names
    proportional to its phoneme count instead.
    """
    ref = [(name, k) for k, part in enumerate(parts) for name in part]
    n, m = len(names), len(ref)
    if n < len(parts) or not m:
        return _proportional(n, [max(len(p), 1) for p in parts])
    cost = [[0.0] * (m + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        cost[i][0] = float(i)
    for j in range(1, m + 1):
        cost[0][j] = float(j)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost[i][j] = min(cost[i - 1][j - 1] + _cost(names[i - 1], ref[j - 1][0]), cost[i - 1][j] + 1,
                             cost[i][j - 1] + 1)
    labels = [0] * n
    i, j = n, m
    while i > 0:
        if j > 0 and cost[i][j] == cost[i - 1][j - 1] + _cost(names[i - 1], ref[j - 1][0]):
            labels[i - 1] = ref[j - 1][1]
            i, j = i - 1, j - 1
        elif j > 0 and cost[i][j] == cost[i][j - 1] + 1:
            j -= 1
        else:  # a phoneme spoken that no word alone has: it goes with the word being aligned
            labels[i - 1] = ref[max(j - 1, 0)][1]
            i -= 1
    starts = [0]
    for k in range(1, len(parts)):
        first = next((i for i, label in enumerate(labels) if label >= k), n)
        if first <= starts[-1] or first >= n:
            return _proportional(n, [max(len(p), 1) for p in parts])
        starts.append(first)
    return starts


def _proportional(n: int, counts: Sequence[int]) -> list[int]:
    """Start indices splitting ``n`` items in proportion to ``counts`` (may repeat when n is small)."""
    total, acc, out = sum(counts), 0, []
    for c in counts:
        out.append(min(n, round(n * acc / total)))
        acc += c
    return out


def word_samples(events: Sequence[Event], tokens: Sequence[Token], end: int,
                 phonemes: Callable[[str], list[str]]) -> list[tuple[int, int]]:
    """``(start, end)`` sample of every token: ``events`` of one synthesis of the text ``tokens`` come
    from, ``end`` the last sample of speech, ``phonemes(word)`` the phoneme names of a word said alone."""
    if not tokens:
        return []
    group_start: dict[int, int] = {}
    for event in events:
        if event.kind == "word":
            k = _token_at(tokens, event.position)
            if k is not None and k not in group_start:
                group_start[k] = event.sample
    if not group_start:  # no word event at all: the whole utterance is one group
        group_start[0] = next((e.sample for e in events if e.kind == "phoneme"), 0)
    heads = sorted(group_start)
    if heads[0] != 0:  # words before the first event join its group
        group_start[0] = group_start.pop(heads[0])
        heads[0] = 0
    phones = [e for e in events if e.kind == "phoneme"]
    starts = [0] * len(tokens)
    for g, head in enumerate(heads):
        last = heads[g + 1] if g + 1 < len(heads) else len(tokens)
        a = group_start[head]
        b = group_start[heads[g + 1]] if g + 1 < len(heads) else end
        starts[head] = a
        if last - head == 1:
            continue
        inside = [e for e in phones if a <= e.sample < b and not is_pause(e.name)]
        split = split_group([e.name for e in inside], [phonemes(t.word) for t in tokens[head:last]])
        for k, index in enumerate(split[1:], start=head + 1):
            at = inside[index].sample if index < len(inside) else b
            starts[k] = max(at, starts[k - 1] + 1)
    starts = [min(s, end - 1) for s in starts]
    for k in range(1, len(starts)):  # strictly increasing even when the events crowd together
        starts[k] = max(starts[k], starts[k - 1] + 1)
    out = []
    for k, start in enumerate(starts):
        stop = starts[k + 1] if k + 1 < len(starts) else end
        pause = next((e.sample for e in phones if start < e.sample < stop and is_pause(e.name)
                      and any(start <= p.sample < e.sample and not is_pause(p.name) for p in phones)), None)
        out.append((start, max(start + 1, min(stop, pause) if pause is not None else stop)))
    return out
