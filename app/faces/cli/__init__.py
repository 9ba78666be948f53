"""The `sopbot` command (app/faces/cli/main.py) and its command modules.

Each module imports only typer and the commands' shared helpers (support.py) at module level:
main.py imports every module to register its commands, and `sopbot --help` should not load the
domains, so everything else is imported inside the commands.
"""
