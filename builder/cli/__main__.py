"""`python -m builder.cli`: the `builder` command."""

from builder.cli import main

main()
