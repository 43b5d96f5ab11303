"""``python -m provkg`` runs the command line."""

from .cli import app

app()
