"""What one `sopbot demo` run is asked for (the command's options): a module of its own, so
the demo's steps (output.py, phases.py) and the run that drives them (run.py) can all name it
without importing each other."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Options:
    members: int = 300
    days: int = 7
    port: int = 8000
    seed: int = 1
    exit: bool = False
    root: Path = Path("demo")
    flows: Path = Path("sop_flows")
    keywords: Path = Path("keywords.yaml")
    log_to_file: bool = False  # the service's logs (warnings up) to demo/, not the terminal
