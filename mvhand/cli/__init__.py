"""mvhand's command-line interface (click). Each subcommand lives in its own module."""
