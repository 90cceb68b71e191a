"""The state diagram in docs/decision-logic.md is the one generated from the machine class."""

from __future__ import annotations

from pathlib import Path

from emsctl.cli import main
from emsctl.diagram import mermaid
from emsctl.machines import LoadMachine

DOC = Path(__file__).resolve().parents[2] / "docs" / "decision-logic.md"


def test_decision_logic_doc_embeds_the_current_machine_diagram() -> None:
    assert mermaid() in DOC.read_text(encoding="utf-8"), "run `emsctl diagram` and update the doc"


def test_diagram_lists_every_state_and_event_of_the_machine() -> None:
    text = mermaid()
    for state in LoadMachine.states:
        v = state.value
        assert f" {v} " in text or f" {v}:" in text or f"> {v}" in text
    for event in ("arm", "start", "shed", "brake", "release", "detect_manual", "force_on"):
        assert f": {event}" in text


def test_diagram_command_prints_mermaid(capsys) -> None:
    assert main(["diagram"]) == 0
    assert capsys.readouterr().out == mermaid()
