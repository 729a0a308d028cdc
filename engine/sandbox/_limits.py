"""How much a script may use, and the error when it uses more."""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Per evaluation. Defaults: 2 s of CPU, 256 MiB of memory, 64 KiB of printed output,
    and 16 MiB for what a script hands back (variables outlive the step and are stored)."""

    cpu_seconds: float = 2.0
    memory_bytes: int = 256 * MIB
    output_bytes: int = 64 * 1024
    result_bytes: int = 16 * MIB

    # What a process definition may ask for, at most.
    MAX_CPU_SECONDS = 60.0
    MAX_MEMORY_BYTES = 4096 * MIB

    def describe_cpu(self) -> str:
        return f"{self.cpu_seconds:g} s"

    def describe_memory(self) -> str:
        return f"{self.memory_bytes // MIB} MiB"


DEFAULT_LIMITS = Limits()
