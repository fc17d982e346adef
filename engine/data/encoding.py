"""Text files as people save them: which encoding their bytes are in and which delimiter separates CSV cells.

The encoding is read from a byte-order mark, else UTF-16 without one is recognised by its NUL bytes (the
high byte of every ASCII character, all at odd offsets for little-endian, even ones for big-endian), else
strict UTF-8 is tried, else `charset-normalizer` (a maintained detector) names it: Excel on a Chinese Windows
computer writes GB18030/GBK, on a Taiwanese one Big5, and "Unicode text" means UTF-16. On a short file the
detector may take Chinese bytes for Korean or Japanese, so when it names an East Asian double-byte codec,
GB18030 and Big5 (HKSCS) are tried too and the decoding with the most CJK characters wins (Hangul and kana
count against; GB18030 on a tie); a remaining Korean or Japanese guess is reported as a guess. The
delimiter comes from `csv.Sniffer` over the first lines, limited to the four that spreadsheets write
(`,` `;` tab `|`). Both can be overridden by the user ("auto" detects).
"""
from __future__ import annotations

import codecs
import csv
import re

AUTO = "auto"
ENCODINGS = (AUTO, "utf-8", "utf-8-sig", "utf-16", "gb18030", "gbk", "big5", "shift_jis", "latin-1")
DELIMITERS = (AUTO, ",", ";", "\t", "|")
SNIFF_LINES = 20
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
# What charset-normalizer names a superset of: the file is decoded with the wider codec.
_WIDER = {"gb2312": "gb18030", "gbk": "gb18030", "big5": "big5hkscs"}
UTF16_PROBE = 4096        # bytes looked at for the NUL bytes of UTF-16 without a byte-order mark
UTF16_NUL_SHARE = 0.1     # from this share of NUL bytes at odd (or even) offsets the text is UTF-16 ...
UTF16_NUL_RATIO = 4       # ... when that parity holds this many times more NUL bytes than the other
# The codecs a detector confuses on short Chinese text, and the Chinese ones tried against them.
DOUBLE_BYTE = {"cp949", "euc_kr", "shift_jis", "cp932", "big5", "cp950", "gb2312", "gbk"}
CHINESE_CANDIDATES = ("gb18030", "big5hkscs")
GUESSES = {"cp949", "euc_kr", "shift_jis", "cp932"}  # a final guess to confirm (a warning names it)
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff\u3000-\u303f\uff01-\uff65]")
_NOT_CHINESE = re.compile(r"[\u1100-\u11ff\u3130-\u318f\uac00-\ud7af\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]")


class UnknownEncoding(ValueError):
    """The bytes decode in no encoding the detector knows (or not in the one the user chose)."""


def decode(raw: bytes, choice: str = AUTO) -> tuple[str, str]:
    """(text, the encoding used) of a file's bytes; `choice` other than "auto" is used as given.

    Raises UnknownEncoding (a ValueError) when the bytes are not text in the chosen or any detected encoding.
    """
    if choice != AUTO:
        try:
            return raw.decode(choice), choice
        except (UnicodeDecodeError, LookupError) as exc:
            raise UnknownEncoding(str(exc)) from None
    name = detect_encoding(raw)
    return raw.decode(_WIDER.get(name, name)), name


def is_guess(name: str | None) -> bool:
    """Whether a detected encoding is a Korean or Japanese guess the user should confirm (see GUESSES)."""
    return bool(name) and codecs.lookup(name).name in GUESSES


def detect_encoding(raw: bytes) -> str:
    """The encoding of `raw`: its byte-order mark, else UTF-16 by its NUL bytes, else UTF-8 when it decodes
    strictly, else the detector's best guess (a Python codec name such as "gb18030" or "big5"), checked
    against the Chinese codecs when it names an East Asian double-byte one."""
    for bom, name in _BOMS:
        if raw.startswith(bom):
            return name
    for name in (_utf16_without_bom(raw[:UTF16_PROBE]), "utf-8"):
        if name and _decodes(raw, name):
            return name
    from charset_normalizer import from_bytes

    best = from_bytes(raw).best()
    if best is None:
        raise UnknownEncoding("the file is not text in any known encoding")
    name = codecs.lookup(best.encoding).name
    if name in DOUBLE_BYTE:
        name = _most_chinese(raw, name)
    return name.replace("_", "-")


def _utf16_without_bom(head: bytes) -> str | None:
    """"utf-16-le" or "utf-16-be" when the NUL bytes of `head` sit at odd or even offsets (see UTF16_NUL_SHARE),
    else None."""
    halves = max(1, len(head) // 2)
    odd, even = head[1::2].count(0) / halves, head[0::2].count(0) / halves
    if odd >= UTF16_NUL_SHARE and odd >= UTF16_NUL_RATIO * even:
        return "utf-16-le"
    if even >= UTF16_NUL_SHARE and even >= UTF16_NUL_RATIO * odd:
        return "utf-16-be"
    return None


def _most_chinese(raw: bytes, detected: str) -> str:
    """Of GB18030, the detected codec and Big5 (HKSCS), the one whose strict decoding of `raw` holds the most CJK
    ideographs and punctuation less Hangul and kana (the first in that order wins a tie)."""
    scores = {}
    for name in dict.fromkeys((CHINESE_CANDIDATES[0], detected, *CHINESE_CANDIDATES[1:])):
        try:
            text = raw.decode(_WIDER.get(name, name))
        except UnicodeDecodeError:
            continue
        scores[name] = len(_CJK.findall(text)) - len(_NOT_CHINESE.findall(text))
    return max(scores, key=scores.get) if scores else detected


def _decodes(raw: bytes, name: str) -> bool:
    """Whether `raw` decodes strictly in codec `name`."""
    try:
        raw.decode(name)
    except UnicodeDecodeError:
        return False
    return True


def sniff_delimiter(text: str, suffix: str, choice: str = AUTO) -> str:
    """The cell delimiter of CSV/TSV `text`: `choice` unless "auto", else what `csv.Sniffer` finds in the first
    lines; when it finds none, the candidate seen most in the header line (a .tsv's default is tab)."""
    if choice != AUTO:
        return choice
    default = "\t" if suffix == ".tsv" else ","
    sample = "\n".join(text.splitlines()[:SNIFF_LINES])
    if not sample.strip():
        return default
    try:
        return csv.Sniffer().sniff(sample, delimiters="".join(DELIMITERS[1:])).delimiter
    except csv.Error:
        header = sample.splitlines()[0]
        counts = {d: header.count(d) for d in DELIMITERS[1:]}
        best = max(counts, key=counts.get)
        return best if counts[best] > counts.get(default, 0) else default


def delimiter_name(delimiter: str | None) -> str | None:
    """A delimiter as the report shows it: "tab" for a tab character, else the character itself."""
    return "tab" if delimiter == "\t" else delimiter
