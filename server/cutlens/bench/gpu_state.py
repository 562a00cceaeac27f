"""The GPU's clock, temperature, power and throttle reasons while a measurement runs, read
through NVML (``nvidia-ml-py``: ``import pynvml``; optional, in the ``bench`` extra).

    mon = GpuMonitor.open(uuid="GPU-...", pci_bus_id="00000000:1B:00.0")   # None: no NVML
    mon.read()   # {"sm_clock_mhz": 1755, "temp_c": 61, "power_w": 688.2,
                 #  "throttle": ["sw_power_cap"]}
    mon.driver   # "580.82.07"

No torch: the worker passes the device's UUID / PCI bus id (``CUDA_VISIBLE_DEVICES``
renumbers devices, NVML does not). Every NVML failure is a missing field, never an error.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

log = logging.getLogger(__name__)

#: NVML's clocks-event (throttle) reason bits -> the names reported.
THROTTLE_REASONS = (
    (0x1, "gpu_idle"),
    (0x2, "applications_clocks"),
    (0x4, "sw_power_cap"),
    (0x8, "hw_slowdown"),
    (0x10, "sync_boost"),
    (0x20, "sw_thermal"),
    (0x40, "hw_thermal"),
    (0x80, "hw_power_brake"),
    (0x100, "display_clocks"),
)


def throttle_names(mask: int) -> list[str]:
    """NVML's reason bitmask as names (``0x4`` -> ``["sw_power_cap"]``); unknown bits as
    hex."""
    names = [name for bit, name in THROTTLE_REASONS if mask & bit]
    rest = mask & ~sum(bit for bit, _ in THROTTLE_REASONS)
    if rest:
        names.append(hex(rest))
    return names


class GpuMonitor:
    """One device's NVML handle."""

    def __init__(self, nvml: Any, handle: Any) -> None:
        self._nvml = nvml
        self._handle = handle

    @classmethod
    def open(cls, *, uuid: str | None = None, pci_bus_id: str | None = None,
             index: int | None = None) -> GpuMonitor | None:
        """The device by UUID, else PCI bus id, else NVML index; None without NVML or
        without a match."""
        try:
            import pynvml
        except ImportError:
            return None
        try:
            pynvml.nvmlInit()
        except Exception as e:  # no driver, no device
            log.debug("NVML: %s", e)
            return None
        lookups = ((pynvml.nvmlDeviceGetHandleByUUID, uuid),
                   (pynvml.nvmlDeviceGetHandleByPciBusId, pci_bus_id),
                   (pynvml.nvmlDeviceGetHandleByIndex, index))
        for lookup, key in lookups:
            if key is None:
                continue
            with contextlib.suppress(Exception):
                return cls(pynvml, lookup(key))
        return None

    @property
    def driver(self) -> str | None:
        try:
            v = self._nvml.nvmlSystemGetDriverVersion()
        except Exception:
            return None
        return v.decode() if isinstance(v, bytes) else str(v)

    def read(self) -> dict[str, Any]:
        """``sm_clock_mhz``, ``temp_c``, ``power_w``, ``throttle`` (None where NVML has no
        answer)."""
        n, h = self._nvml, self._handle
        out: dict[str, Any] = {"sm_clock_mhz": None, "temp_c": None, "power_w": None,
                               "throttle": None}
        with contextlib.suppress(Exception):
            out["sm_clock_mhz"] = int(n.nvmlDeviceGetClockInfo(h, n.NVML_CLOCK_SM))
        with contextlib.suppress(Exception):
            out["temp_c"] = int(n.nvmlDeviceGetTemperature(h, n.NVML_TEMPERATURE_GPU))
        with contextlib.suppress(Exception):
            out["power_w"] = round(n.nvmlDeviceGetPowerUsage(h) / 1000.0, 1)
        reasons = (getattr(n, "nvmlDeviceGetCurrentClocksEventReasons", None) or
                   getattr(n, "nvmlDeviceGetCurrentClocksThrottleReasons", None))
        if reasons is not None:
            with contextlib.suppress(Exception):
                out["throttle"] = throttle_names(int(reasons(h)))
        return out
