"""Finding Azurite for the tests: a wrong ICECHAT_AZURITE says so, not a traceback later."""

from __future__ import annotations

import pytest

from icechat.dev.azurite import azurite_command
from icechat.exceptions import DevServerError


def test_an_icechat_azurite_that_is_no_program_is_named(monkeypatch, tmp_path):
    for wrong in (tmp_path / "missing", tmp_path):
        monkeypatch.setenv("ICECHAT_AZURITE", str(wrong))
        with pytest.raises(DevServerError, match=f"ICECHAT_AZURITE is '{wrong}', which is not"):
            azurite_command()


def test_an_icechat_azurite_program_is_used(monkeypatch, tmp_path):
    program = tmp_path / "azurite-blob"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    monkeypatch.setenv("ICECHAT_AZURITE", str(program))
    assert azurite_command() == str(program)
