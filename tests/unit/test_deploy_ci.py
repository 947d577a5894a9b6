"""deploy/ci/: the example GitHub Actions workflows run dnsserve check as it parses
its options today (read as text; no YAML package offline, no process)."""

from __future__ import annotations

import re
import shlex

import pytest
from typer.testing import CliRunner

from dnsserve.cli import cli
from testkit import ROOT

CI = ROOT / "deploy" / "ci"


def check_commands(name: str) -> list[list[str]]:
    text = (CI / name).read_text()
    return [shlex.split(m) for m in re.findall(r"dnsserve check[^|>\n]*", text)]


@pytest.mark.parametrize(("name", "wanted"), [
    ("dns-posture.yml", ["--format", "sarif"]),
    ("dns-review.yml", ["--against", "origin/main"]),
])
def test_each_workflow_runs_check_with_options_the_cli_takes(name: str, wanted: list[str]) -> None:
    commands = check_commands(name)
    assert any(" ".join(wanted) in " ".join(c) for c in commands), commands
    for argv in commands:
        # the options are parsed (an unknown one fails) before --help stops the command
        done = CliRunner().invoke(cli, [*argv[1:], "--help"])
        assert done.exit_code == 0, done.output
        assert "--against" in done.output


def test_the_workflows_trigger_on_the_zones_and_upload_the_sarif() -> None:
    posture = (CI / "dns-posture.yml").read_text()
    review = (CI / "dns-review.yml").read_text()
    for text in (posture, review):
        assert 'paths: ["zones/**", "dnsserve.toml"]' in text and "pull_request:" in text
    assert "uses: github/codeql-action/upload-sarif@v3" in posture
    assert "sarif_file: dnsserve.sarif" in posture and "security-events: write" in posture
    assert "fetch-depth: 0" in review  # origin/main is there for git show
