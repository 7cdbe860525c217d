"""Starting the server clears old metric files, and nothing else, wherever the folder is."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import pytest

from service.ops.metrics import clear_metric_files


def test_only_the_metric_files_of_an_earlier_start_are_removed(tmp_path):
    folder = tmp_path / "prometheus"
    folder.mkdir()
    (folder / "counter_123.db").write_bytes(b"old")
    (folder / "README").write_text("the operator's", encoding="utf-8")
    (folder / "nested").mkdir()
    clear_metric_files(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["README", "nested"]
    clear_metric_files(tmp_path / "new" / "folder")
    assert (tmp_path / "new" / "folder").is_dir()


@pytest.mark.parametrize("given", ["", None])
def test_an_empty_or_missing_folder_setting_means_the_var_folder(given, tmp_path, monkeypatch):
    """An empty PROMETHEUS_MULTIPROC_DIR once made the start clear the working directory."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "keep.txt").write_text("kept", encoding="utf-8")
    monkeypatch.setenv("FLASHLOAN_VAR_DIR", str(tmp_path / "var"))
    # Set first, so that the setting is put back as it was whatever the import does to it.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", given or "")
    if given is None:
        monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    monkeypatch.setitem(sys.modules, "service.web.gunicorn_conf", None)
    monkeypatch.delitem(sys.modules, "service.web.gunicorn_conf")
    importlib.import_module("service.web.gunicorn_conf")
    folder = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    assert folder == str(tmp_path / "var" / "prometheus")
    clear_metric_files(Path(folder))
    assert (tmp_path / "keep.txt").read_text(encoding="utf-8") == "kept"
