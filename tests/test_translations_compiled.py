"""The compiled Russian catalogue (django.mo, committed) holds every translation of the
source catalogue (django.po): a .mo left stale after a merge shows staff English text
although the .po has its Russian."""

import ast
import gettext
from pathlib import Path

LOCALE = Path(__file__).resolve().parents[1] / "locale" / "ru" / "LC_MESSAGES"


def _unquote(lines: list[str]) -> str:
    return "".join(ast.literal_eval(line) for line in lines)


def po_entries(path: Path) -> list[tuple[str | None, str, str]]:
    """(context, msgid, msgstr) of the translated, non-fuzzy, singular entries."""
    entries, entry, field, fuzzy = [], {}, None, False

    def close():
        nonlocal entry, fuzzy
        if entry.get("msgid") and entry.get("msgstr") and not fuzzy and "plural" not in entry:
            entries.append(
                (
                    _unquote(entry["msgctxt"]) if "msgctxt" in entry else None,
                    _unquote(entry["msgid"]),
                    _unquote(entry["msgstr"]),
                )
            )
        entry, fuzzy = {}, False

    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line:
            close()
            field = None
        elif line.startswith("#,") and "fuzzy" in line:
            fuzzy = True
        elif line.startswith("#"):
            continue
        elif line.startswith(("msgid_plural", "msgstr[")):
            entry["plural"] = True
            field = None
        else:
            keyword, _, rest = line.partition(" ")
            if keyword in ("msgctxt", "msgid", "msgstr"):
                field = keyword
                entry[field] = [rest]
            elif field and line.startswith('"'):
                entry[field].append(line)
    close()
    return [e for e in entries if _unquote_ok(e)]


def _unquote_ok(entry) -> bool:
    return bool(entry[1]) and bool(entry[2])


def test_every_russian_translation_is_in_the_compiled_catalogue():
    entries = po_entries(LOCALE / "django.po")
    assert len(entries) > 500  # the parser read the catalogue
    with open(LOCALE / "django.mo", "rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    missing = [
        msgid
        for context, msgid, msgstr in entries
        if (compiled.pgettext(context, msgid) if context else compiled.gettext(msgid)) != msgstr
    ]
    assert not missing, (
        f"{len(missing)} translations are not compiled (run `DEBUG=1 python manage.py "
        f"compilemessages` after deleting django.mo): {missing[:5]}"
    )
