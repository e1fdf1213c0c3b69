"""The README documents every setting and both commands."""

from app.settings import Settings
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_in_the_readme_table():
    missing = [name for name in Settings.model_fields if f"`KIOSK_{name.upper()}" not in README]
    assert not missing, f"undocumented settings: {missing}"


def test_the_two_commands_are_documented():
    assert "make serve" in README and "make test" in README
    assert "make test" in (ROOT / ".ci/run").read_text(encoding="utf-8")
