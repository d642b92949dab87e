"""Text as it is spoken: numbers, currency and symbols spelled out in words, for synthesis and pairs.

espeak-ng reads ``3`` and ``%`` itself, but then one written token becomes several spoken words with no
way to tell where each starts, and the decoder context and answers of a pair would not be the words
heard. So the generators speak :func:`spell_out` of the text: every word of it is a word said.

- integers (``3``, ``1,250``, ``-4``) → cardinals (``three``, ``one thousand two hundred fifty``,
  ``minus four``); four-digit numbers 1100–1999 and 2010–2099 without a comma are read as years
  (``1999`` → ``nineteen ninety-nine``);
- decimals (``3.14``) → ``three point one four``; ordinals (``21st``) → ``twenty-first``;
- times (``7:30``) → ``seven thirty``; currency (``$5``, ``£3.50``) → ``five dollars``,
  ``three pounds fifty``; ``50%`` → ``fifty percent``;
- symbols (``&``, ``+``, ``=``, ``@``, ``#``, ``°``, ...) → their names; any other symbol → its Unicode
  name in lower case; dashes between spaces → a comma (a pause).
"""

from __future__ import annotations

import re
import unicodedata

ONES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
        "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen")
TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))
ORDINAL = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth", "nine": "ninth",
           "twelve": "twelfth"}
SYMBOLS = {"%": "percent", "&": "and", "+": "plus", "=": "equals", "@": "at", "#": "number", "°": "degrees",
           "×": "times", "*": "star", "<": "less than", ">": "greater than", "~": "about", "/": "slash",
           "\\": "backslash", "|": "bar", "^": "caret", "_": "underscore", "§": "section", "±": "plus or minus"}
CURRENCY = {"$": ("dollar", "dollars", "cent", "cents"), "£": ("pound", "pounds", "penny", "pence"),
            "€": ("euro", "euros", "cent", "cents"), "¥": ("yen", "yen", "sen", "sen")}
KEEP = set(".,;:!?'\"()-")  # punctuation espeak-ng reads as prosody, not as words
DASHES = "–—"
TYPOGRAPHY = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "„": '"', "«": '"', "»": '"', "[": "(",
                            "]": ")", "{": "(", "}": ")", "…": "...", "\u00a0": " "})

_NUMBER = r"\d{1,3}(?:,\d{3})+|\d+"
_MONEY = re.compile(rf"([{''.join(CURRENCY)}])\s?({_NUMBER})(?:\.(\d\d))?(?!\d)")
_PERCENT = re.compile(rf"({_NUMBER}(?:\.\d+)?)\s?%")
_TIME = re.compile(r"\b(\d{1,2}):(\d\d)\b")
_ORDINAL = re.compile(r"\b(\d+)(st|nd|rd|th)\b", re.IGNORECASE)
_DECIMAL = re.compile(rf"(?<![\d.,])(-?)({_NUMBER})\.(\d+)(?![\d.])")
_INTEGER = re.compile(rf"(?<![\w.])(-?)({_NUMBER})(?![\d])|(\d+)")


def number_words(n: int) -> str:
    """A cardinal in words: ``121`` → ``one hundred twenty-one``, ``-3`` → ``minus three``."""
    if n < 0:
        return "minus " + number_words(-n)
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + ("-" + ONES[n % 10] if n % 10 else "")
    if n < 1000:
        return ONES[n // 100] + " hundred" + (" " + number_words(n % 100) if n % 100 else "")
    for size, name in SCALES:
        if n >= size:
            rest = n % size
            return number_words(n // size) + " " + name + (" " + number_words(rest) if rest else "")
    raise AssertionError(n)  # unreachable: every n >= 1000 has a scale


def year_words(n: int) -> str:
    """A year read in pairs: ``1999`` → ``nineteen ninety-nine``, ``1905`` → ``nineteen oh five``."""
    high, low = divmod(n, 100)
    if low == 0:
        return number_words(high) + " hundred"
    return number_words(high) + " " + ("oh " + ONES[low] if low < 10 else number_words(low))


def ordinal_words(n: int) -> str:
    """An ordinal: ``21`` → ``twenty-first``, ``100`` → ``one hundredth``."""
    words = number_words(n)
    head, sep, last = max(words.rpartition(" "), words.rpartition("-"), key=lambda t: len(t[0]))
    if last in ORDINAL:
        last = ORDINAL[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return head + sep + last


def _integer(text: str) -> int:
    return int(text.replace(",", ""))


def _cardinal(match: re.Match) -> str:
    sign, digits, loose = match.group(1), match.group(2), match.group(3)
    if loose is not None:  # digits glued to letters ("mp3"): said on their own
        return f" {number_words(int(loose))} "
    n = _integer(digits)
    if not sign and "," not in digits and len(digits) == 4 and (1100 <= n <= 1999 or 2010 <= n <= 2099):
        return year_words(n)
    return number_words(-n if sign else n)


def _money(match: re.Match) -> str:
    one, many, small, smalls = CURRENCY[match.group(1)]
    n = _integer(match.group(2))
    out = f"{number_words(n)} {one if n == 1 else many}"
    if match.group(3) and int(match.group(3)):
        out += " " + number_words(int(match.group(3)))
    return out


def _digits(text: str) -> str:
    return " ".join(ONES[int(d)] for d in text)


def _symbol(char: str) -> str:
    if char in SYMBOLS:
        return f" {SYMBOLS[char]} "
    if char in CURRENCY:
        return f" {CURRENCY[char][1]} "
    if char in DASHES:
        return ", "
    category = unicodedata.category(char)
    if char in KEEP or char.isspace() or category[0] in "LNM":
        return char
    if category[0] in "SP":  # a symbol or punctuation espeak-ng would skip or read unpredictably
        return f" {unicodedata.name(char, 'symbol').lower()} "
    return " "  # control and format characters


def spell_out(text: str) -> str:
    """``text`` with numbers, currency and symbols written as the words that are spoken (see the module)."""
    text = unicodedata.normalize("NFC", text).translate(TYPOGRAPHY)
    text = _MONEY.sub(lambda m: " " + _money(m) + " ", text)
    text = _PERCENT.sub(lambda m: m.group(1) + " percent", text)
    text = _TIME.sub(lambda m: f"{number_words(int(m.group(1)))} "
                               + ("o'clock" if m.group(2) == "00" else
                                  ("oh " if m.group(2)[0] == "0" else "") + number_words(int(m.group(2)))), text)
    text = _ORDINAL.sub(lambda m: ordinal_words(int(m.group(1))), text)
    text = _DECIMAL.sub(lambda m: ("minus " if m.group(1) else "") + number_words(_integer(m.group(2)))
                        + " point " + _digits(m.group(3)), text)
    text = _INTEGER.sub(_cardinal, text)
    text = re.sub(r"\s+-\s+", ", ", text)  # a spaced hyphen is a dash
    text = re.sub(r"(\w)-\s+|\s+-(\w)", lambda m: (m.group(1) or "") + " " + (m.group(2) or ""), text)
    text = "".join(_symbol(c) for c in text)
    text = re.sub(r"\s+([.,;:!?])", r"\1", text)
    return re.sub(r"\s+", " ", text).strip()
