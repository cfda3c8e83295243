"""What the stand-in "generates": words that are one token each, and embedding vectors.

Every word below, with its leading space, is exactly one cl100k token, and tiktoken's pre-tokenizer
splits a run of such words at each space, so an answer of n words counts as exactly n tokens with
``finops.tokens.counting.count_text``. That is what lets tests compare the proxy's own counts with the
usage the stand-in reports. The choice of words is a hash of the request body and the seed: the same
request gets the same answer, and a shorter answer is always a prefix of a longer one.
"""

from __future__ import annotations

import hashlib
import math
import struct

# 64 words, so that one hash byte picks one word (byte & 63) without bias.
# fmt: off
WORDS: tuple[str, ...] = (
    " the", " of", " and", " to", " in", " is", " that", " for", " it", " as", " was", " with",
    " be", " by", " on", " not", " this", " are", " or", " from", " at", " which", " but", " have",
    " an", " they", " you", " were", " their", " one", " all", " we", " can", " has", " there",
    " been", " if", " more", " when", " will", " would", " who", " so", " no", " cost", " token",
    " model", " data", " team", " spend", " budget", " price", " value", " rate", " time", " work",
    " use", " way", " new", " first", " also", " after", " only", " plan",
)
# fmt: on
_WORD_MASK = len(WORDS) - 1
if len(set(WORDS)) != 64:
    raise RuntimeError("the word list must hold 64 distinct words")

_GENERATION_DOMAIN = b"finops-sim/generate\x00"
_EMBEDDING_DOMAIN = b"finops-sim/embed\x00"


def _seed_bytes(seed: int) -> bytes:
    return seed.to_bytes(16, "little", signed=True)


def output_words(body: bytes, seed: int, count: int) -> list[str]:
    """The first ``count`` output tokens' texts for a request ``body``."""
    if count <= 0:
        return []
    # An extendable-output hash: asking for more bytes keeps the earlier ones, hence the prefix rule.
    stream = hashlib.shake_128(_GENERATION_DOMAIN + _seed_bytes(seed) + body).digest(count)
    return [WORDS[byte & _WORD_MASK] for byte in stream]


def embedding_vector(text: bytes, seed: int, dimensions: int) -> list[float]:
    """A unit-length vector that depends only on the input text and the seed."""
    raw = hashlib.shake_128(_EMBEDDING_DOMAIN + _seed_bytes(seed) + text).digest(4 * dimensions)
    # Map each 32-bit word to [-1, 1); normalising makes cosine similarity behave like a real model's.
    values = [value / 2147483648.0 for value in struct.unpack(f"<{dimensions}i", raw)]
    norm = math.sqrt(sum(value * value for value in values)) or 1.0
    return [value / norm for value in values]
