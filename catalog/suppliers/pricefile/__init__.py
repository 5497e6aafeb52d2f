"""Price-file suppliers: a YML, XLSX or CSV file by URL or uploaded, read as a stream.

`mapping` says which column (or YML element) holds which offer field, `parsers` turns the
file into mapped rows and typed offer values (bad rows listed by number, never fatal),
`download` fetches the file through the shared HTTP client with the credentials from the
environment variable the supplier names.
"""

__all__ = ["PriceFileAdapter"]


def __getattr__(name):
    # The adapter (and the supplier interface it imports) loads on first use, so the
    # readers can be used alone (bench, admin preview).
    if name == "PriceFileAdapter":
        from .adapter import PriceFileAdapter

        return PriceFileAdapter
    raise AttributeError(name)
