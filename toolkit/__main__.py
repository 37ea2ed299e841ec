"""`python -m toolkit` is the same as the `edgesmith` command."""
from toolkit.cli import entry_point

entry_point()
