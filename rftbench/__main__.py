"""``python -m rftbench`` is the ``rftbench`` command."""

from rftbench.cli import main

main()
