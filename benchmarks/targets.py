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
        "CPU: the machine runs ~1.85-1.9 of its 2 cores busy, so the figure sits within "
        "~10% of the ceiling measured above. Where a meeting's CPU goes (per-process CPU "
        "of a run, 2026-11-21, fourth session; shares, which hold as the machine's speed "
        "moves): the two worker processes ~69% (SpiffWorkflow's own task execution about a "
        "fifth of it; the operators two fifths - the Calendar call through requests, "
        "records.update, find and get; the end of the run, state and step log packed and "
        "written; five SQLAlchemy transactions and nine statements per meeting, an empty "
        "write transaction ~120 us of CPU at the machine's usual speed), the serving "
        "process ~22% (the load generator's record write, dispatching the create and the "
        "write-back events, polling), the emulator ~5.5% (~12% until its request log "
        "became plain ASGI and uvicorn got httptools and uvloop), the sandbox processes "
        "~2.5%. SpiffWorkflow alone runs this model at raw_spiff_instances_per_s - ~2.9 ms "
        "per instance at 340/s, with no storage and no HTTP - and a meeting costs the "
        "machine ~3.5-5 such runs in all (e2e_sqlite_cpu_per_meeting_in_raw_runs: 3.5-4 in "
        "the fourth session's runs, 3.2-4.9 in the fifth's at 102-110/s with raw "
        "SpiffWorkflow at 180-290/s; the two sides slow down unevenly as the shared "
        "machine does). With two cores, 300/s at 340/s raw needs 2.3 or "
        "fewer: everything the engine does besides SpiffWorkflow's own run (trigger, "
        "instance, leases, state, step log, operators, HTTP, write-back) would have to fit "
        "in about one more run's worth of CPU, a fraction of what those parts cost here. "
        "Until 2026-11-21 (second session) SQLite's one write lock bounded the figure at "
        "~150/s with the machine ~30% idle; the update is now written at the step's "
        "commit, holding the lock ~1.4 ms. The machine's own speed moves by up to 2.5x "
        "within hours (raw_spiff_instances_per_s read 133 to 463), and this figure with it."
    ),
    "engine_vs_raw": (
        "The same costs as e2e_sqlite_meetings_per_s. Its other side is SpiffWorkflow "
        "run right after the end-to-end loop (raw_spiff_instances_per_s_beside_e2e): "
        "taken minutes apart, the two caught the machine's drift as much as the engine."
    ),
    "e2e_pg_celery_scaling": (
        "The machine's two cores, which the workers share with everything else a meeting "
        "needs. Per-process CPU of runs on 2026-11-21 (fifth session), ms per meeting with "
        "one worker / with two: the worker processes 17.8 / 16-18 (Celery's consumer ~2 / "
        "~1 each; the process running the instance 15.6 / ~7 each), PostgreSQL 6.2 / "
        "4.6-5.3, the serving process - dispatcher, scheduler, Celery publishing - 5.8 / "
        "4.2-5.2, the load generator 3.1 / 2.2-2.6, the emulator 1.4 / 1.2-1.3, the sandbox "
        "processes 0.6, Redis 0.3. One worker is not CPU-bound: the process running the "
        "instance is busy ~60% of the time and waits the rest for its next message from "
        "Celery's consumer (~15%), for PostgreSQL (~25%) and the emulator (~5%) (py-spy, "
        "idle samples included). Two workers keep ~1.8 of the 2 cores busy: each waits on "
        "PostgreSQL and the emulator, which wait for a core. 1.6 x one worker's ~38/s is "
        "~60/s, ~30 ms of CPU per meeting at 1.8 cores: the runs sit on that line, and the "
        "machine's speed moves them across it - 1.28 to 1.68 in four runs of 300-meeting "
        "rounds within an hour, 1.48 and 1.69 in two of 800 (two workers' CPU per meeting "
        "31.5 and 27.7 ms). A saving in the worker's CPU speeds one worker too "
        "(its run is ~60% of its cycle) and moves the ratio little; what raises it is a "
        "cheaper serving process, load generator and PostgreSQL per meeting. Celery's "
        "solo pool for one-process workers (no consumer beside the process running the "
        "instance) was tried: the same CPU per meeting."
    ),
    "db_bytes_per_completed_instance": (
        "Met: about 4.5 KB — the step log ~2 KB (ten rows, mostly their fixed columns), "
        "the instance ~1 KB, the two outbox events ~0.7 KB, the meeting record ~0.7 KB, "
        "indexes ~0.4 KB."
    ),
    "growth_throughput_loss_pct": (
        "The machine's speed between turns, not the store: three runs of the same code "
        "(2026-11-21, fifth session; 600-meeting turns, fresh and grown store in "
        "alternation) read 11.5%, 0.3% and 2.7%. The queries a meeting makes on instances "
        "go by index (due ones by state and due time, a record's earlier ones by serial "
        "key), so 200,000 completed instances add index levels, not scans; the turns are now 1,500 "
        "meetings to let a few slow seconds weigh less."
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
    if "e2e_sqlite_machine_cpu_ms_per_meeting" in figures and raw:
        # A meeting's CPU (every process) in runs of SpiffWorkflow alone: a cost that
        # holds as the shared machine's speed moves, unlike milliseconds.
        out["e2e_sqlite_cpu_per_meeting_in_raw_runs"] = _in_raw_runs(figures, raw)
    one, two = (
        figures.get("e2e_pg_celery_1w_meetings_per_s"),
        figures.get("e2e_pg_celery_2w_meetings_per_s"),
    )
    if one and two:
        out["e2e_pg_celery_scaling"] = two / one
    return out


def measured_bound(name: str, figures: dict[str, float], cores: int) -> str | None:
    """What this run measured of the machine's CPU for a figure that missed: the
    ceiling every core busy would allow at the CPU per meeting the run spent."""
    f = figures
    if name == "e2e_sqlite_meetings_per_s" and "e2e_sqlite_ceiling_meetings_per_s" in f:
        return (
            f"Measured in this run: the machine was {f['e2e_sqlite_cores_busy']:.2f} of "
            f"{cores} cores busy, {f['e2e_sqlite_machine_cpu_ms_per_meeting']:.1f} ms of CPU "
            "per meeting in all (engine, emulator, load generator); with every core busy "
            f"at that cost, at most {f['e2e_sqlite_ceiling_meetings_per_s']:.0f}/s. "
            f"{TARGETS[name][1]:g}/s needs {cores * 1e3 / TARGETS[name][1]:.1f} ms or less."
            + _in_raw_runs_said(f, cores, TARGETS[name][1])
        )
    if name == "e2e_pg_celery_scaling" and "e2e_pg_celery_scaling_ceiling" in f:
        needed = TARGETS[name][1] * f["e2e_pg_celery_1w_meetings_per_s"]
        return (
            f"Measured in this run: with one worker the machine was "
            f"{f['e2e_pg_celery_1w_cores_busy']:.2f} of {cores} cores busy "
            f"({f['e2e_pg_celery_1w_machine_cpu_ms_per_meeting']:.1f} ms of CPU per meeting: "
            "the worker, PostgreSQL, the serving process, the emulator, the load "
            f"generator), with two {f['e2e_pg_celery_2w_cores_busy']:.2f} "
            f"({f['e2e_pg_celery_2w_machine_cpu_ms_per_meeting']:.1f} ms; the polls cost "
            "the same each second, so a meeting costs less the more there are). With "
            "every core busy at two workers' cost, two reach at most "
            f"{f['e2e_pg_celery_scaling_ceiling']:.2f} x one. {TARGETS[name][1]:g} x one "
            f"is {needed:.0f}/s: at the {f['e2e_pg_celery_2w_cores_busy']:.2f} cores two "
            f"workers kept busy, {f['e2e_pg_celery_2w_cores_busy'] * 1e3 / needed:.1f} ms "
            "of CPU per meeting or less."
        )
    return None


def _in_raw_runs(figures: dict[str, float], raw: float) -> float:
    return figures["e2e_sqlite_machine_cpu_ms_per_meeting"] * raw / 1e3


def _in_raw_runs_said(figures: dict[str, float], cores: int, target: float) -> str:
    """The same bound in SpiffWorkflow runs, where SpiffWorkflow was measured beside it."""
    raw = figures.get("raw_spiff_instances_per_s_beside_e2e")
    if not raw:
        return ""
    return (
        f" In SpiffWorkflow's own runs of the model (measured beside it, {raw:.0f}/s), a "
        f"meeting cost {_in_raw_runs(figures, raw):.1f} of them; {target:g}/s needs "
        f"{cores * raw / target:.1f} or fewer."
    )


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
        cores = int(results["machine"].get("cores") or 1)
        for name in missed:
            measured = measured_bound(name, figures, cores)
            lines.append(
                f"- **{name}**: {measured + ' ' if measured else ''}"
                f"{BOUNDS.get(name, 'not profiled yet.')}"
            )
    lines += ["", "## Every figure", "", "| figure | value |", "|---|---:|"]
    lines += [f"| {k} | {v:.3f} |" for k, v in figures.items()]
    return "\n".join(lines) + "\n"
