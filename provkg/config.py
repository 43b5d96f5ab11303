"""Environment variables shared by every command; an explicit CLI option wins."""

ENV_DATA = "PROVKG_DATA"  # the store directory (default ./provkg-data)
ENV_BASE_IRI = "PROVKG_BASE_IRI"  # prefix of every minted IRI (default urn:provkg:)
ENV_HOST = "PROVKG_HOST"  # interface `provkg serve` listens on
ENV_PORT = "PROVKG_PORT"  # port `provkg serve` listens on
ENV_SHACL_MODE = "PROVKG_SHACL_MODE"  # flag | reject | quarantine | off (default flag)
