"""A missing browser skips the browser tests on a developer's machine and fails them in CI."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.account.conftest import CHROMIUM, require_browser


def test_a_missing_browser_fails_in_ci(tmp_path: Path) -> None:
    with pytest.raises(pytest.fail.Exception, match="apt-get install chromium"):
        require_browser(tmp_path / "chromium", ci=True)


def test_a_missing_browser_skips_elsewhere(tmp_path: Path) -> None:
    with pytest.raises(pytest.skip.Exception):
        require_browser(tmp_path / "chromium", ci=False)


def test_the_browser_tests_use_debians_chromium() -> None:
    assert Path("/usr/bin/chromium") == CHROMIUM
