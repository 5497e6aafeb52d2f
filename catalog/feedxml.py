"""The price list's string writer: one escaping function and the check of what was written.

docs/kaspi-price-list.md §5.5 allows a writer that is not an XML library if its escaping
goes through one tested function whose output is proven equal to the library's, and every
build gets a structural check. Here:

* `escape()` is that function. tests/catalog/test_feed_writer.py proves it writes the bytes
  `lxml.etree.xmlfile` writes for the same text and attributes (golden files, and hostile
  random text: markup characters, quotes, tabs, newlines, CR, astral and Cyrillic
  letters). It refuses characters XML 1.0 cannot carry instead of writing them.
* `ElementWriter` offers the `element()` / `write()` pair of `lxml.etree.xmlfile` on top of
  `escape()`, for code that writes rare offers element by element.
* `OutputCheck` streams over the bytes as they are written: expat (C) checks that the file
  is well-formed and namespace-correct, and the offers are counted and their SKUs checked
  unique from the written bytes themselves, not from the writer's own bookkeeping. The
  build runs it in a child process (`python catalog/feedxml.py` reading the file's bytes
  on stdin, answering JSON), so the check takes the other core instead of the writer's.

No Django here, so the tests can drive it alone.
"""

import json
import re
import resource
import sys
from contextlib import contextmanager
from xml.parsers import expat

NS = "kaspiShopping"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
SCHEMA_LOCATION = "kaspiShopping http://kaspi.kz/kaspishopping.xsd"
# Characters XML 1.0 forbids; one of them in a supplier name breaks the whole file.
XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


class FeedWriteError(ValueError):
    """A value the writer must not write (the caller checks values before; this is the
    last line, like lxml's "All strings must be XML compatible")."""


def escape(value: str, *, attribute: bool = False) -> str:
    """`value` as libxml2 serialises it in text (or, with `attribute`, in a double-quoted
    attribute value): `& < >` always, CR as `&#13;`; in attributes also `"`, LF and TAB.
    Apostrophes and non-ASCII letters stay as they are (UTF-8 output), as lxml writes them.
    """
    # isprintable() is a fast, exact pre-check: every character XML_ILLEGAL names is a
    # control, surrogate or noncharacter, none printable (tests/catalog/test_feed_writer.py).
    if not value.isprintable() and XML_ILLEGAL.search(value):
        raise FeedWriteError(f"not XML-compatible: {value!r}")
    if "&" in value:
        value = value.replace("&", "&amp;")
    if "<" in value:
        value = value.replace("<", "&lt;")
    if ">" in value:
        value = value.replace(">", "&gt;")
    if "\r" in value:
        value = value.replace("\r", "&#13;")
    if attribute:
        if '"' in value:
            value = value.replace('"', "&quot;")
        if "\n" in value:
            value = value.replace("\n", "&#10;")
        if "\t" in value:
            value = value.replace("\t", "&#9;")
    return value


# How every price list begins: the declaration and the root tag up to its namespace.
HEAD = f"<?xml version='1.0' encoding='utf-8'?>\n<kaspi_catalog xmlns=\"{NS}\""


def header(date: str) -> str:
    """The declaration and the root start tag, attributes in lxml's order."""
    return (
        f'{HEAD} xmlns:xsi="{XSI}" date="{escape(date, attribute=True)}"'
        f' xsi:schemaLocation="{SCHEMA_LOCATION}">'
    )


FOOTER = "</offers></kaspi_catalog>"


class ElementWriter:
    """`element(tag, attrib)` (a context manager) and `write(text)` like lxml's xmlfile,
    appending escaped strings to `parts`. Tags are `{kaspiShopping}name`."""

    def __init__(self, parts: list[str]):
        self.parts = parts
        self._prefix = f"{{{NS}}}"

    @contextmanager
    def element(self, tag: str, attrib: dict | None = None):
        if not tag.startswith(self._prefix):
            raise FeedWriteError(f"element outside the kaspiShopping namespace: {tag!r}")
        name = tag[len(self._prefix) :]
        attrs = "".join(
            f' {key}="{escape(str(value), attribute=True)}"'
            for key, value in (attrib or {}).items()
        )
        self.parts.append(f"<{name}{attrs}>")
        yield
        self.parts.append(f"</{name}>")

    def write(self, text: str) -> None:
        self.parts.append(escape(text))


class OutputCheckError(ValueError):
    pass


_OFFER_SKU = re.compile(rb'<offer sku="([^"]*)"')


class OutputCheck:
    """Feed it every byte of the file in order; `close()` returns the offer count.

    Raises OutputCheckError when the bytes are not well-formed XML with bound namespaces,
    when an SKU appears twice, or when an offer element has no sku first.
    """

    def __init__(self):
        self._parser = expat.ParserCreate(namespace_separator=" ")
        self._tail = b""
        self._skus: set[bytes] = set()
        self.offers = 0
        self._offer_tags = 0

    def feed(self, data: bytes) -> None:
        try:
            self._parser.Parse(data, False)
        except expat.ExpatError as exc:
            raise OutputCheckError(f"not well-formed XML: {exc}") from None
        # Scan whole tags only: keep what follows the last '>' for the next chunk. Inside a
        # well-formed file '<' only opens markup (text and attributes have it escaped).
        data = self._tail + data
        cut = data.rfind(b">") + 1
        self._tail = data[cut:]
        data = data[:cut]
        seen = self._skus
        for sku in _OFFER_SKU.findall(data):
            if sku in seen:
                raise OutputCheckError(f"duplicate SKU {sku.decode('utf-8', 'replace')!r}")
            seen.add(sku)
        self.offers = len(seen)
        self._offer_tags += data.count(b"<offer ") + data.count(b"<offer>")

    def close(self) -> int:
        try:
            self._parser.Parse(self._tail[:0], True)
        except expat.ExpatError as exc:
            raise OutputCheckError(f"not well-formed XML: {exc}") from None
        if self._offer_tags != self.offers:
            raise OutputCheckError(
                f"{self._offer_tags - self.offers} offer element(s) without a leading sku"
            )
        return self.offers


def peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM belongs to the address space made by exec; ru_maxrss
    would also count the parent's peak, which Linux carries across fork and exec."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def check_stream(source) -> dict:
    """OutputCheck over a binary stream: {"offers": n} or {"error": why}, and the peak RSS."""
    check = OutputCheck()
    try:
        for block in iter(lambda: source.read(1 << 18), b""):
            check.feed(block)
        result: dict = {"offers": check.close()}
    except OutputCheckError as exc:
        result = {"error": str(exc)}
    result["peak_rss_mb"] = peak_rss_mb()
    return result


if __name__ == "__main__":
    # The build's check process: the file's bytes on stdin, one JSON line on stdout.
    sys.stdout.write(json.dumps(check_stream(sys.stdin.buffer)))
