"""Streaming check of a price list against the XSD; no Django.

The build does not re-parse with the XSD (its writer checks every value and its output is
proven equal to lxml's: catalog/feedxml.py); `validate_feed_file` and the tests use this,
and by hand `python -m catalog.feedcheck SCHEMA.xsd < kaspi.xml` prints `{"offers": N}` or
`{"error": "..."}` and its own `peak_rss_mb`.
"""

import json
import sys

from lxml import etree

from .feedxml import peak_rss_mb

OFFER_TAG = "{kaspiShopping}offer"


class FeedCheckError(ValueError):
    pass


def count_valid_offers(source, schema: etree.XMLSchema) -> int:
    """Parse `source` (a path or binary file) with `schema`; return the offer count.

    Raises etree.XMLSyntaxError (schema violations included) or FeedCheckError (a duplicate
    SKU) on the first error. Each offer is freed once counted; only the set of SKUs grows.
    """
    offers = 0
    seen: set[str] = set()
    for _event, offer in etree.iterparse(source, events=("end",), tag=OFFER_TAG, schema=schema):
        offers += 1
        sku = offer.get("sku")
        if sku in seen:
            raise FeedCheckError(f"duplicate SKU {sku!r} (offer {offers})")
        seen.add(sku)
        offer.clear()
        while offer.getprevious() is not None:
            del offer.getparent()[0]
    return offers


def main(argv: list[str]) -> int:
    schema = etree.XMLSchema(etree.parse(argv[1]))
    try:
        result = {"offers": count_valid_offers(sys.stdin.buffer, schema)}
    except (etree.XMLSyntaxError, FeedCheckError) as exc:
        result = {"error": str(exc)}
    result["peak_rss_mb"] = peak_rss_mb()
    sys.stdout.write(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
