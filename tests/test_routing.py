"""Every page runs inside the app even when Streamlit runs its script by itself (ui/routing.py).

The browser check of the same thing, a fresh server opened at a page's address, is in
tests/test_e2e_browser.py."""

from __future__ import annotations

import ast

import pytest
from streamlit.runtime.pages_manager import PagesManager

from helpers import REPO
from ui import routing

PAGES = sorted((REPO / "pages").glob("*.py"))


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_each_page_routes_through_the_app_before_anything_else(path) -> None:
    body = [node for node in ast.parse(path.read_text()).body
            if not isinstance(node, ast.Import | ast.ImportFrom)
            and not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))]  # docstring
    first = body[0]
    assert isinstance(first, ast.Expr) and ast.unparse(first) == "routing.through_app()", path.name


def test_through_app_ends_the_folder_mode_once(monkeypatch: pytest.MonkeyPatch) -> None:
    reruns: list[bool] = []
    monkeypatch.setattr(routing.st, "rerun", lambda: reruns.append(True))
    monkeypatch.setattr(PagesManager, "uses_pages_directory", True)
    routing.through_app()
    assert PagesManager.uses_pages_directory is False and reruns == [True]
    routing.through_app()  # the app's navigation is in force now: nothing to do
    assert reruns == [True]
