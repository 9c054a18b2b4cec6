"""A normal (non-editable) install: the package-dir mapping, the assets, and a torch-free runtime."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOT_SOURCE = (
    ".git",
    ".venv",
    "build",
    "*.egg-info",
    "data",
    "runs",
    ".devcarry",
    ".whl",
    "__pycache__",
    ".*_cache",
)


def test_wheel_maps_export_and_realtime_and_ships_the_assets(tmp_path):
    source = (
        tmp_path / "source"
    )  # build from a copy: setuptools writes build/ and *.egg-info beside the sources
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("ganvoice-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "ganvoice/export/onnx_export.py",
        "ganvoice/realtime/engine.py",
        "ganvoice/assets/default.onnx",
        "ganvoice/assets/noise.onnx",
        "ganvoice/assets/demo.wav",
        "ganvoice/corpus/sentences.txt",
        "ganvoice/realtime/gst/python/ganvoice_gst.py",
        "ganvoice/realtime/gst/python/ganvoicesrc_gst.py",
    ):
        assert required in names, required
    assert not any(name.startswith(("tests/", "export/", "realtime/")) for name in names)
    # the installed runtime imports without torch
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = "import sys, ganvoice.realtime, ganvoice.realtime.engine; print('torch' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env={"PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
