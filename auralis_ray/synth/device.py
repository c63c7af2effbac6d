"""Device selection (CUDA > MPS > CPU) and description (DeviceInfo)."""

from __future__ import annotations

import platform
from dataclasses import dataclass
from typing import Optional

import torch


@dataclass
class DeviceInfo:
    """GPU device information and capabilities."""

    device_type: str  # "mps", "cuda", "cpu"
    device_name: str
    total_memory_mb: float
    available_memory_mb: float
    compute_capability: Optional[str] = None
    supports_fp16: bool = False
    supports_bf16: bool = False
    unified_memory: bool = False


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def select_device(preference: str = "auto") -> torch.device:
    """CUDA > MPS > CPU for "auto"; an explicit choice that is not available raises RuntimeError."""
    preference = (preference or "auto").lower()
    if preference == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if preference == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("gpu.device is 'cuda' but CUDA is not available")
    if preference == "mps" and not _mps_available():
        raise RuntimeError("gpu.device is 'mps' but MPS is not available")
    if preference not in ("cuda", "mps", "cpu"):
        raise ValueError(f"gpu.device must be auto, cuda, mps or cpu, got {preference!r}")
    return torch.device(preference)


def _system_memory_mb() -> tuple[float, float]:
    try:
        import psutil

        vm = psutil.virtual_memory()
        return vm.total / 2**20, vm.available / 2**20
    except Exception:  # psutil missing: report unknown
        return 0.0, 0.0


def describe_device(device: torch.device | str) -> DeviceInfo:
    device = torch.device(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        free, total = torch.cuda.mem_get_info(index)
        return DeviceInfo(
            device_type="cuda",
            device_name=props.name,
            total_memory_mb=total / 2**20,
            available_memory_mb=free / 2**20,
            compute_capability=f"{props.major}.{props.minor}",
            supports_fp16=True,
            supports_bf16=bool(torch.cuda.is_bf16_supported()),
            unified_memory=False,
        )
    total, available = _system_memory_mb()
    if device.type == "mps":
        return DeviceInfo("mps", f"Apple {platform.machine()}", total, available, supports_fp16=True,
                          unified_memory=True)
    name = platform.processor() or platform.machine() or "cpu"
    return DeviceInfo("cpu", name, total, available, supports_fp16=False,
                      supports_bf16=bool(getattr(torch.backends, "mkldnn", None) and torch.backends.mkldnn.is_available()))
