"""`python -m leadsync` runs the command line."""

from leadsync.cli import app

app()
