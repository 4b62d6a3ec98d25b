"""docs/configuration.md is what the declarations of the settings give."""

from __future__ import annotations

from pathlib import Path

from hsm.cli.config_reference import render
from hsm.core.projectkeys import SECTIONS

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_configuration_doc_is_current() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), (
        "docs/configuration.md is out of date: run `python -m hsm.cli.config_reference > docs/configuration.md`")


def test_every_declared_key_is_in_the_doc_with_its_meaning() -> None:
    text = render()
    for section in SECTIONS:
        assert f"## {section.name}\n" in text
        for key in section.keys:
            assert key.doc, f"{section.name}.{key.name} has no description"
            assert f"| `{key.name}`" in text and key.doc in text
