"""Subcommands beyond ``run``/``validate``/``report``, one module each.

Each module defines ``HELP`` (one line), ``add_arguments(parser)`` and
``main(args) -> int`` (exit status); :mod:`simcluster.cli` registers the
modules named in :data:`COMMANDS`, typed with hyphens (``export_chakra`` is
``export-chakra``; the underscore spelling stays accepted as an alias). Raise
:class:`simcluster.errors.SpecError` for bad input (exit status 2).
"""

COMMANDS = ("sweep", "search", "collective", "export_chakra", "validate_published", "import_megatron")
