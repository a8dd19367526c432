"""Host subcommands of ``pacelight`` (each module exposes ``add_parser(subparsers)``)."""
