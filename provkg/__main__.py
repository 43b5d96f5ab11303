"""``python -m provkg`` runs the command line."""

from .cli import app

# guarded: worker processes (spawned, for SHACL and SPARQL) import this module again
if __name__ == "__main__":
    app()
