"""What a process has used so far: its peak resident memory and CPU seconds (reported by
training for each of its steps, and by every worker of a cluster)."""

from __future__ import annotations

import resource
import sys


def peak_rss_mb() -> float:
    """This process's peak resident memory: VmHWM on Linux (ru_maxrss there carries a
    forked parent's peak across exec, so every spawned worker would report the client's)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    unit = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB elsewhere
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit / 2**20, 1)


def usage() -> dict[str, float]:
    """This process's peak resident memory (MB) and CPU seconds so far."""
    use = resource.getrusage(resource.RUSAGE_SELF)
    return {"peak_rss_mb": peak_rss_mb(), "cpu_s": round(use.ru_utime + use.ru_stime, 3)}
