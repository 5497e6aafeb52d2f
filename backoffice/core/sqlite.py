"""Case-insensitive LIKE for every alphabet on SQLite.

SQLite's built-in LIKE folds ASCII letters only, so the admin's search (Django's
`icontains`, `iexact`) found "Ноутбук" for "Ноутбук" but not for "ноутбук". SQLite lets an
application replace the function behind the LIKE operator: each new connection gets
`like()` below, which folds case the way Python does (Cyrillic, Kazakh letters included).
`contains` on SQLite was already case-insensitive for ASCII (Django documents it); it now
is for every letter. PostgreSQL needs nothing: `icontains` is UPPER() LIKE UPPER() there,
and UPPER() follows the database's character type (C.UTF-8 or ru_RU.UTF-8 fold Cyrillic;
a database made with the bare "C" locale would not).
"""

import functools
import re


@functools.lru_cache(maxsize=512)
def _pattern(pattern: str, escape: str | None) -> re.Pattern:
    parts = []
    chars = iter(pattern)
    for char in chars:
        if escape and char == escape:
            parts.append(re.escape(next(chars, "")))
        elif char == "%":
            parts.append(".*")
        elif char == "_":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.DOTALL | re.IGNORECASE)


def like(pattern, value, escape=None):
    """SQLite's like(X, Y[, Z]) is `Y LIKE X ESCAPE Z`: 1, 0, or NULL when either is NULL."""
    if pattern is None or value is None:
        return None
    return int(_pattern(str(pattern), escape).fullmatch(str(value)) is not None)


def install_like(sender, connection, **kwargs) -> None:
    """connection_created receiver."""
    if connection.vendor != "sqlite":
        return
    raw = connection.connection
    raw.create_function("like", 2, like, deterministic=True)
    raw.create_function("like", 3, like, deterministic=True)
