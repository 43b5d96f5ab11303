"""Environment variables shared by every command; an explicit CLI option wins."""

ENV_DATA = "PROVKG_DATA"  # the store directory (default ./provkg-data)
ENV_BASE_IRI = "PROVKG_BASE_IRI"  # prefix of every minted IRI (default urn:provkg:)
ENV_HOST = "PROVKG_HOST"  # interface `provkg serve` listens on
ENV_PORT = "PROVKG_PORT"  # port `provkg serve` listens on
ENV_SHACL_MODE = "PROVKG_SHACL_MODE"  # flag | reject | quarantine | off (default flag)
ENV_SHACL_WORKERS = "PROVKG_SHACL_WORKERS"  # processes running per-event SHACL (default: cores - 1, 1 to 4; 0: in-process)

# access control (provkg serve): "off" runs open even when keys exist (same as --open)
ENV_AUTH = "PROVKG_AUTH"
# limits (provkg serve); see provkg/limits.py and docs/security.md
ENV_MAX_BODY = "PROVKG_MAX_BODY"  # request body size, also once gunzipped (default 2MiB)
ENV_MAX_BATCH = "PROVKG_MAX_BATCH"  # events per batch (default 1000)
ENV_QUERY_TIMEOUT = "PROVKG_QUERY_TIMEOUT"  # seconds per SPARQL / named query (default 30)
ENV_MAX_QUERIES = "PROVKG_MAX_QUERIES"  # queries running at once (default 4)
ENV_MAX_ROWS = "PROVKG_MAX_ROWS"  # rows of a SPARQL or named-query answer (default 100000)
ENV_MAX_RESULT_BYTES = "PROVKG_MAX_RESULT_BYTES"  # size of a SPARQL answer (default 50MB)
ENV_RATE_LIMIT = "PROVKG_RATE_LIMIT"  # requests per second per key (default 100; 0: no limit)
ENV_RATE_BURST = "PROVKG_RATE_BURST"  # bucket size: requests a key may send at once (default 200)
