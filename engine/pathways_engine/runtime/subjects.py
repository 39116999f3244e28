"""One child, one reference: how a subject reference is checked and matched.

References are pseudonyms made by case systems, so the rule can be strict. A reference is
taken in Unicode NFC and may hold Latin letters (A-Z and the Nordic and other accented Latin
letters, ÆØÅ ÄÖ Ü É ...), the digits 0-9 and `- _ . / : #`, 1 to 64 of them. Letters of
other scripts (a Cyrillic С looks like a Latin C), combining marks (O + U+0338 looks like
Ø) and spaces are refused rather than folded, so two references that look alike are the same
reference or one of them is refused. References match without regard to case: `c-001` is
the child `C-001`.
"""

from __future__ import annotations

import unicodedata

from pathways_engine.errors import InvalidArgument
from pathways_engine.errors import shown

MAX_LENGTH = 64
PUNCTUATION = "-_./:#"
_HINT = "use the pseudonymous reference, never a personal identity number"


def _allowed(char: str) -> bool:
    if char.isascii():
        return char.isalnum() or char in PUNCTUATION
    return unicodedata.category(char).startswith("L") and \
        unicodedata.name(char, "").startswith("LATIN ")


def normalise(ref: str) -> tuple[str, str]:
    """(the reference as stored, the key it matches by), or InvalidArgument saying why not."""
    text = unicodedata.normalize("NFC", ref)
    if not text or len(text) > MAX_LENGTH:
        raise InvalidArgument(f"subject reference {shown(ref)} must be 1 to {MAX_LENGTH} "
                              f"characters; {_HINT}")
    for char in text:
        if not _allowed(char):
            name = unicodedata.name(char, f"U+{ord(char):04X}")
            raise InvalidArgument(
                f"subject reference {shown(ref)} may hold only Latin letters, digits and "
                f"{' '.join(PUNCTUATION)} (not {char!r}, {name}); {_HINT}")
    return text, key_of(text)


def key_of(ref: str) -> str:
    """What a (valid or legacy) reference matches by."""
    return unicodedata.normalize("NFC", ref).casefold()[:MAX_LENGTH]
