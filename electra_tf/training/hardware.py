"""What the CPU can do that decides the speed of a precision: one detection, used by training and the benchmark.

oneDNN runs bfloat16 matmuls in hardware only on x86 CPUs with AVX512-BF16 or
AMX; elsewhere on x86 it emulates them through float32, several times slower
than float32 itself. :func:`hardware_bf16` tells which case this is (or that
it cannot tell), and :func:`warn_if_bf16_emulated` is what
:func:`~electra_tf.training.builder.build_pretraining` calls when a config asks
for ``train.mixed_precision: bfloat16``. No TensorFlow import: the benchmark's
parent process uses it too.
"""

from __future__ import annotations

import logging
import platform
from typing import FrozenSet, Optional

__all__ = ["BF16_FLAGS", "cpu_flags", "hardware_bf16", "warn_if_bf16_emulated"]

log = logging.getLogger(__name__)

# /proc/cpuinfo flags of the x86 instructions oneDNN uses for bf16 matmuls.
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
_X86 = {"x86_64", "amd64", "i386", "i686", "x86"}


def cpu_flags(cpuinfo_path: str = "/proc/cpuinfo") -> Optional[FrozenSet[str]]:
    """The first CPU's ``flags`` from ``/proc/cpuinfo`` (Linux, x86), or None when there are none to read."""
    try:
        with open(cpuinfo_path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


def hardware_bf16(cpuinfo_path: str = "/proc/cpuinfo", machine: Optional[str] = None) -> Optional[bool]:
    """True if this x86 CPU has bf16 matmul instructions, False if it has not, None if unknown.

    None on other architectures (ARM and Apple CPUs have their own bf16 story,
    not read here) and where ``/proc/cpuinfo`` is missing or has no flags.
    """
    machine = (machine if machine is not None else platform.machine()).lower()
    if machine not in _X86:
        return None
    flags = cpu_flags(cpuinfo_path)
    if flags is None:
        return None
    return bool(flags & BF16_FLAGS)


def warn_if_bf16_emulated(mixed_precision: str) -> bool:
    """Logs a warning when ``mixed_precision`` is bfloat16 and this CPU emulates bf16; returns whether it warned."""
    if mixed_precision != "bfloat16" or hardware_bf16() is not False:
        return False
    log.warning("train.mixed_precision: bfloat16 on a CPU without AVX512-BF16 or AMX: oneDNN emulates bf16 "
                "matmuls here, so training will be slower than float32 on this CPU (use "
                "train.mixed_precision: none here; bf16 pays on CPUs with those instructions, GPUs and TPUs)")
    return True
