"""Plain text (.txt, .md) as continued pre-training rows: paragraphs packed into chunks of up to max_length tokens.

A chunk holds whole paragraphs while they fit (one token is kept for the EOS that TRL appends); a paragraph
longer than that is cut at sentence ends, and a sentence still too long at token boundaries. Tokens are the
model's own (its tokenizer), so a chunk is never cut again in training. Standard library only and never the
studio: the exported training script carries this file verbatim and cuts a text file into the same chunks.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

SUFFIXES = (".txt", ".md")
SEPARATOR = "\n\n"
PREVIEW_CHUNKS = 3
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?。！？；;])\s*")


@dataclass
class ChunkPreview:
    """What a plain-text file becomes: how many chunks, their token counts, and the first few chunks."""

    chunks: int
    tokens: list[int] = field(default_factory=list)
    first: list[str] = field(default_factory=list)

    @property
    def mean_tokens(self) -> float:
        """The mean tokens per chunk (0 for none)."""
        return round(sum(self.tokens) / len(self.tokens), 1) if self.tokens else 0.0


def paragraphs(text: str) -> list[tuple[int, str]]:
    """(line number where it starts, paragraph) for each non-blank paragraph (blank lines separate them)."""
    out, line = [], 1
    position = 0
    for match in [*_PARAGRAPH_BREAK.finditer(text), None]:
        end = match.start() if match else len(text)
        part = text[position:end]
        if part.strip():
            out.append((line + part[:len(part) - len(part.lstrip())].count("\n"), part.strip()))
        if match:
            line += text[position:match.end()].count("\n")
            position = match.end()
    return out


def chunk(numbered: list[tuple[int, str]], tokenizer, max_length: int) -> list[tuple[int, str]]:
    """(line number of its first paragraph, chunk text) of chunks up to `max_length` tokens (EOS included)."""
    budget = max(1, max_length - 1)
    chunks: list[tuple[int, str]] = []
    current, start = "", 0
    for line, paragraph in numbered:
        for piece in _pieces(paragraph, tokenizer, budget):
            joined = f"{current}{SEPARATOR}{piece}" if current else piece
            if current and _count(tokenizer, joined) > budget:
                chunks.append((start, current))
                current, start = piece, line
            else:
                current, start = joined, start if current else line
    if current:
        chunks.append((start, current))
    return chunks


def preview(texts: list[str], tokenizer) -> ChunkPreview:
    """The chunk count, tokens per chunk and the first chunks of a plain-text file's rows."""
    tokens = [_count(tokenizer, text) for text in texts]
    return ChunkPreview(chunks=len(texts), tokens=tokens, first=texts[:PREVIEW_CHUNKS])


def _pieces(paragraph: str, tokenizer, budget: int) -> list[str]:
    """The paragraph whole when it fits `budget` tokens, else its sentences (packed), and too-long sentences cut
    at token boundaries."""
    if _count(tokenizer, paragraph) <= budget:
        return [paragraph]
    pieces: list[str] = []
    for sentence in (s for s in _SENTENCE_END.split(paragraph) if s.strip()):
        if _count(tokenizer, sentence) > budget:
            ids = tokenizer(sentence, add_special_tokens=False)["input_ids"]
            pieces += [tokenizer.decode(ids[i:i + budget]) for i in range(0, len(ids), budget)]
        elif pieces and _count(tokenizer, f"{pieces[-1]} {sentence}") <= budget:
            pieces[-1] = f"{pieces[-1]} {sentence}"
        else:
            pieces.append(sentence)
    return pieces


def _count(tokenizer, text: str) -> int:
    """How many tokens `text` is, without special tokens."""
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])
