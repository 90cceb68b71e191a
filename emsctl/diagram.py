"""Renders the load state machine as a Mermaid state diagram, straight from the machine class.

docs/decision-logic.md embeds the output; a test keeps the two identical.
"""

from __future__ import annotations

import argparse
import sys

from emsctl.machines import LoadMachine


def mermaid() -> str:
    """The machine's states and transitions (event [guards]) as Mermaid source."""
    lines = ["stateDiagram-v2", f"    [*] --> {LoadMachine.initial_state.value}"]
    for state in LoadMachine.states:
        for t in state.transitions:
            guards = [str(c) for c in t.cond] if t.cond else []
            label = t.event + (f" [{', '.join(guards)}]" if guards else "")
            lines.append(f"    {t.source.value} --> {t.target.value}: {label}")
    return "\n".join(lines) + "\n"


def _run(args: argparse.Namespace) -> int:
    sys.stdout.write(mermaid())
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("diagram", help="print the load state machine as a Mermaid diagram")
    p.set_defaults(func=_run)
