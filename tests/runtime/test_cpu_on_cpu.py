"""Per-process CPU limits: torch threads and core pinning (what "one core each" means)."""
import os
import subprocess
import sys

import pytest

from wmsd_ray.cpu import limit_cpu

CHILD = """
import os, torch
from wmsd_ray.cpu import limit_cpu
limit_cpu(1, [0])
print(sorted(os.sched_getaffinity(0)), torch.get_num_threads())
"""


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="core pinning is Linux-only")
def test_limit_cpu_pins_the_process_to_the_named_cores():
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True).stdout.split("\n")[-2]
    assert out == "[0] 1"


def test_limit_cpu_names_a_core_the_machine_lacks():
    missing = (os.cpu_count() or 1) + 7
    with pytest.raises(ValueError, match=f"names core {missing}"):
        limit_cpu(1, [missing])
