"""Text files as people save them: which encoding their bytes are in and which delimiter separates CSV cells.

The encoding is read from a byte-order mark, else strict UTF-8 is tried, else `charset-normalizer` (a
maintained detector) names it: Excel on a Chinese Windows computer writes GB18030/GBK, on a Taiwanese one
Big5, and "Unicode text" means UTF-16. The delimiter comes from `csv.Sniffer` over the first lines, limited
to the four that spreadsheets write (`,` `;` tab `|`). Both can be overridden by the user ("auto" detects).
"""
from __future__ import annotations

import codecs
import csv

AUTO = "auto"
ENCODINGS = (AUTO, "utf-8", "utf-8-sig", "utf-16", "gb18030", "gbk", "big5", "shift_jis", "latin-1")
DELIMITERS = (AUTO, ",", ";", "\t", "|")
SNIFF_LINES = 20
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
# What charset-normalizer names a superset of: the file is decoded with the wider codec.
_WIDER = {"gb2312": "gb18030", "gbk": "gb18030", "big5": "big5hkscs"}


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


def detect_encoding(raw: bytes) -> str:
    """The encoding of `raw`: its byte-order mark, else UTF-8 when it decodes strictly, else the detector's
    best guess (a Python codec name such as "gb18030" or "big5")."""
    for bom, name in _BOMS:
        if raw.startswith(bom):
            return name
    try:
        raw.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(raw).best()
    if best is None:
        raise UnknownEncoding("the file is not text in any known encoding")
    return codecs.lookup(best.encoding).name.replace("_", "-")


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
