"""The static half of the isolation check (`make test` also installs and runs each service's
tests alone: ``python -m cctelegram_testing.isolation run-all``)."""

from __future__ import annotations

from pathlib import Path

from cctelegram_testing.isolation import ROOT, check


def test_the_tree_passes_the_isolation_check() -> None:
    assert check() == []


def _tiny_workspace(root: Path) -> None:
    for member in ("libs/common", "services/alpha", "services/beta"):
        name = "cctelegram-" + member.split("/")[1]
        package = root / member / "src" / name.replace("-", "_")
        package.mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (root / member / "pyproject.toml").write_text(f'[project]\nname = "{name}"\n')
        (root / member / "tests").mkdir()


def test_the_check_names_each_kind_of_coupling(tmp_path: Path) -> None:
    _tiny_workspace(tmp_path)
    assert check(tmp_path) == []
    alpha = tmp_path / "services/alpha"
    (alpha / "tests/test_x.py").write_text(
        "from cctelegram_beta.tools import x\n"
        "PROCESS = ['-m', 'cctelegram_beta']\n"
        "from cctelegram_common import subjects\n"
    )
    (alpha / "src/cctelegram_alpha/testing.py").write_text("")
    (tmp_path / "services/beta/src/cctelegram_beta/setup.py").write_text(
        "import subprocess\nsubprocess.run(['apt-get', 'install', 'x'])\n"
    )
    assert sorted(check(tmp_path)) == [
        "services/alpha/src/cctelegram_alpha/testing.py: a testing module in src/",
        "services/alpha/tests/test_x.py: imports cctelegram_beta",
        "services/alpha/tests/test_x.py: names cctelegram_beta ('cctelegram_beta')",
        "services/beta/src/cctelegram_beta/setup.py: runs a package manager (apt-get)",
    ]


def test_the_workspace_root_is_the_repository() -> None:
    assert (ROOT / "uv.lock").is_file()
    assert (ROOT / "services").is_dir()
