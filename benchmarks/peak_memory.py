"""The peak resident memory of the calling process, for benchmarks that run each case in a child."""

from __future__ import annotations

import resource
from pathlib import Path


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB.

    VmHWM belongs to the process's own address space; ru_maxrss is not used because after
    fork + exec it starts from the parent's resident size at the fork, so a child of a large
    parent would report the parent's peak.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB
