"""Price-file suppliers: a YML, XLSX or CSV file by URL or uploaded, read as a stream.

`mapping` says which column (or YML element) holds which offer field, `parsers` turns the
file into mapped rows and typed offer values (bad rows listed by number, never fatal),
`download` fetches the file through the shared HTTP client with the credentials from the
environment variable the supplier names.
"""
