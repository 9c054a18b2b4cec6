"""What a benchmark ran on: CPU, cores, memory, load, library versions, GPU; recorded in every result."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import subprocess

import numpy as np
import onnxruntime as ort

from ganvoice import __version__

CPUINFO = "/proc/cpuinfo"
MEMINFO = "/proc/meminfo"
KIB_PER_GIB = 1024**2
#: Seconds nvidia-smi may take to name the GPU.
NVIDIA_SMI_TIMEOUT_S = 10


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what :mod:`platform` knows."""
    try:
        with open(CPUINFO, encoding="utf-8") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gib() -> float | None:
    try:
        with open(MEMINFO, encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / KIB_PER_GIB, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def package_version(name: str) -> str | None:
    """An installed distribution's version, without importing it (torch stays unimported)."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def gpu_names() -> list[str]:
    """NVIDIA GPU names from ``nvidia-smi`` (empty when there is none)."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=NVIDIA_SMI_TIMEOUT_S,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def describe_machine() -> dict:
    """Stable keys describing this machine and the software stack."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (None, None, None)
    return {
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable_cores(),
        "memory_gib": memory_gib(),
        "load_avg_1m": None if load[0] is None else round(load[0], 2),
        "os": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "onnxruntime": ort.__version__,
        "ort_providers": ort.get_available_providers(),
        "torch": package_version("torch"),
        "ganvoice": __version__,
        "gpus": gpu_names(),
    }


def machine_line(machine: dict) -> str:
    """One Markdown line naming the machine (for the top of every table)."""
    gpus = ", ".join(machine.get("gpus") or []) or "none"
    return (
        f"{machine['cpu_model']}, {machine['usable_cores']}/{machine['logical_cores']} cores usable, "
        f"{machine['memory_gib']} GiB, load {machine['load_avg_1m']} at start; GPU: {gpus}; "
        f"onnxruntime {machine['onnxruntime']}, torch {machine['torch'] or 'not installed'}, "
        f"ganvoice {machine['ganvoice']}, Python {machine['python']}"
    )
