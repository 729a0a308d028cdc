"""The targets the figures are held to (on the 2-core reference machine), and the summary."""

from __future__ import annotations

from typing import Any

# figure -> (comparison, target, what it means)
TARGETS: dict[str, tuple[str, float, str]] = {
    "e2e_sqlite_meetings_per_s": (">=", 300, "meetings/s end to end on SQLite"),
    "engine_vs_raw": (">=", 0.25, "engine throughput / raw SpiffWorkflow (no worse than 1 : 4)"),
    "latency_ms_at_100_per_s_p99": ("<=", 100, "p99 ms at 100 meetings/s offered"),
    "e2e_pg_celery_scaling": (">=", 1.6, "2 Celery workers / 1 worker"),
    "db_bytes_per_completed_instance": ("<=", 6144, "bytes stored per instance, step log included"),
    "worker_rss_growth_pct": ("<=", 10, "RSS growth from 1,000 to 10,000 instances (%)"),
    "pacing_events_per_s": (">=", 9.5, "events/s sustained under Google's 600/min"),
    "pacing_throttling_incidents": ("<=", 0, "throttled answers that became incidents"),
    "growth_throughput_loss_pct": ("<=", 10, "throughput lost at 200,000 completed instances (%)"),
}

# What bounds a figure that misses, from profiles (cProfile, py-spy, per-process CPU
# and write-lock hold times) of the runs on the 2-core reference machine.
BOUNDS: dict[str, str] = {
    "e2e_sqlite_meetings_per_s": (
        "CPU. At 140-165/s the machine is ~185% busy of 200%: per meeting about 11-12 ms "
        "of CPU in all (measured per process): the two worker processes ~8 ms, the "
        "serving process ~2.4 ms (the load generator's record write, dispatching the "
        "create and the write-back events, polling), the emulator ~1.3 ms, the sandbox "
        "~0.4 ms. Until 2026-11-21 (second session) the bound was SQLite's one write "
        "lock, not CPU: timed per transaction, it was held 6.5 ms per meeting (the "
        "process's write-back 3.8 ms of it: the update took the lock and kept it while "
        "the run went on to its end, serialising and packing), so no more than ~150/s "
        "could pass whatever the cores did, and the machine sat ~30% idle. The update "
        "is now written at the step's commit, with everything packed before the first "
        "write: the write-back holds the lock 1.4 ms, all writers together ~4.2 ms per "
        "meeting (room for ~240/s). A py-spy profile of the workers: SpiffWorkflow's "
        "task execution about a fifth, the operators about a third (the Calendar call "
        "through requests ~13%, records.update ~10%, records.find and records.get ~8%), "
        "the end of the run ~12% (the step log's values packed against the version's "
        "dictionary, zlib setting the dictionary up per value), the claim ~5%, "
        "SQLAlchemy sessions begun and ended per operator call ~10%. 300/s leaves 6.7 "
        "ms of CPU per meeting for everything, the emulator and the load generator "
        "included: about what SpiffWorkflow's part and one HTTP round trip cost alone. "
        "The machine's own speed moves by up to 40% within minutes "
        "(raw_spiff_instances_per_s read 262 to 463 on 2026-11-21), and this figure "
        "with it: six runs of this session's code read 143-174/s at raw 357-370."
    ),
    "engine_vs_raw": (
        "The same costs as e2e_sqlite_meetings_per_s. Its other side is SpiffWorkflow "
        "run right after the end-to-end loop (raw_spiff_instances_per_s_beside_e2e): "
        "taken minutes apart, the two caught the machine's drift as much as the engine."
    ),
    "e2e_pg_celery_scaling": (
        "The machine. One worker runs one instance at a time: ~16 ms of wall time per "
        "meeting, 11 of them its own CPU, and the whole machine ~130% busy (the worker "
        "~67% of a core, PostgreSQL ~19%, the serving process ~18%, the load generator "
        "~14%, the emulator ~11%). Two workers need that twice over: at ~85-92/s the "
        "machine is ~175% busy, a meeting costing ~19-21 ms of CPU in all (the workers "
        "~11, PostgreSQL ~3, the serving process - dispatcher, scheduler, Celery "
        "publishing at ~0.36 ms a message - ~2.6, the load generator ~1.8, the emulator "
        "~1.4). The ratio is at most about 1.75 x 16 / 20 = 1.4: it rises only as the "
        "processes beside the workers get cheaper, and a saving in the worker speeds up "
        "one worker as much as two. Savings on 2026-11-21 (second session) - no ping "
        "before each pooled connection, claims in autocommit, one producer per publish "
        "batch, the load generator's poll in autocommit - moved both figures (one "
        "worker 59-64/s, two 82-92/s) and the ratio little: 1.36-1.52 in six runs."
    ),
    "db_bytes_per_completed_instance": (
        "Met: about 4.5 KB — the step log ~2 KB (ten rows, mostly their fixed columns), "
        "the instance ~1 KB, the two outbox events ~0.7 KB, the meeting record ~0.7 KB, "
        "indexes ~0.4 KB."
    ),
    "latency_ms_at_100_per_s_p99": (
        "Capacity, and with it the machine's speed of the moment. Met in every run since "
        "the write lock stopped being the bound (2026-11-21, second session: p99 28-49 "
        "ms, p50 17-25 ms in five runs at 143-164/s closed loop). Before, with capacity "
        "at 92-115/s in the machine's slower phases, 100/s was at or near capacity, the "
        "queue grew in bursts and p99 read 180-578 ms (queueing, not service time)."
    ),
}


def derived(figures: dict[str, float]) -> dict[str, float]:
    out: dict[str, float] = {}
    # Against SpiffWorkflow measured right after the end-to-end run, where there is
    # such a figure: one moment's machine for both sides of the ratio.
    raw = figures.get("raw_spiff_instances_per_s_beside_e2e") or figures.get(
        "raw_spiff_instances_per_s"
    )
    if "e2e_sqlite_meetings_per_s" in figures and raw:
        out["engine_vs_raw"] = figures["e2e_sqlite_meetings_per_s"] / raw
    one, two = (
        figures.get("e2e_pg_celery_1w_meetings_per_s"),
        figures.get("e2e_pg_celery_2w_meetings_per_s"),
    )
    if one and two:
        out["e2e_pg_celery_scaling"] = two / one
    return out


def _met(comparison: str, value: float, target: float) -> bool:
    return value >= target if comparison == ">=" else value <= target


def _by(comparison: str, value: float, target: float) -> str:
    if comparison == ">=":
        return f"{value / target:.2f}x of target" if target else "-"
    return f"{value - target:+.1f} over" if value > target else "within"


def summary(results: dict[str, Any]) -> str:
    figures: dict[str, float] = results["figures"]
    lines = [
        "# Catflow benchmarks",
        "",
        f"Run {results['when']} on {results['machine']['platform']}"
        + (" — QUICK sizes: a smoke run, not figures" if results.get("quick") else ""),
        "",
        "## Against the targets",
        "",
        "| figure | value | target | met | by |",
        "|---|---:|---:|---|---|",
    ]
    for name, (comparison, target, meaning) in TARGETS.items():
        if name not in figures:
            lines.append(f"| {name} | not run | {comparison} {target:g} | - | {meaning} |")
            continue
        value = figures[name]
        met = _met(comparison, value, target)
        lines.append(
            f"| {name} | {value:.3f} | {comparison} {target:g} | {'yes' if met else 'NO'} | "
            f"{'' if met else _by(comparison, value, target)} |"
        )
    missed = [n for n, (c, t, _) in TARGETS.items() if n in figures and not _met(c, figures[n], t)]
    if missed:
        lines += ["", "## What bounds the missed ones", ""]
        for name in missed:
            lines.append(f"- **{name}**: {BOUNDS.get(name, 'not profiled yet.')}")
    lines += ["", "## Every figure", "", "| figure | value |", "|---|---:|"]
    lines += [f"| {k} | {v:.3f} |" for k, v in figures.items()]
    return "\n".join(lines) + "\n"
