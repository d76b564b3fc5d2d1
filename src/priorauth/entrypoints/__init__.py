"""Entry points: the command line (and later the HTTP API): parse, call, render."""
