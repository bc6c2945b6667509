"""Sort a PostgreSQL backend's `perf` samples of the backfill into the steps of the warm-up.

Not a test. Reads `perf script` output of a recording made with `--call-graph dwarf` (see
bench/backfill_profile.py `--perf`) and prints the share of samples per step: the warm-up
(`_warm`, run once as an InitPlan: engine answer, string_to_array, the parse of the literals,
INSERT into the cache, the request JSON) and the per-row path (the cache lookup, the cast to
vector, the UPDATE itself), each with its hottest leaf functions.

    perf script -i FILE.0 > samples.txt; python bench/perf_phases.py samples.txt
"""

from __future__ import annotations

import collections
import sys

WARM_STEPS = (
    ("warm: parse of the literals (vector_in or array_in, strtof)",
     ("vector_in", "array_in", "vector_to_float4")),
    ("warm: engine answer (dblink receive, materialize)", ("dblink_get_result",)),
    ("warm: string_to_array", ("text_to_array",)),
    ("warm: INSERT into the cache", ("heap_insert", "ExecInsert")),
    ("warm: DELETE of older rows", ("ExecDelete",)),
    ("warm: request JSON", ("jsonb_agg_transfn", "to_jsonb", "JsonbValueToJsonb", "jsonb_in")),
)
ROW_STEPS = (
    ("row: _warm_embedding (SECURITY DEFINER)", ("fmgr_security_definer",)),
    ("row: ::vector", ("array_to_vector",)),
    ("row: embedding() itself", ("plpgsql_call_handler",)),
    ("row: the UPDATE (executor, heap, TOAST)", ("ExecModifyTable",)),
)


def stacks(path: str) -> list[list[str]]:
    """Each sample's frames, leaf first, as bare function names."""
    samples: list[list[str]] = []
    current: list[str] = []
    with open(path, encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if not line.strip():
                if current:
                    samples.append(current)
                current = []
            elif line[0] in " \t":
                parts = line.split(None, 1)
                if len(parts) == 2:
                    current.append(parts[1].split(" (")[0].split("+0x")[0])
    if current:
        samples.append(current)
    return samples


def step(frames: list[str]) -> str:
    def has(names: tuple[str, ...]) -> bool:
        return any(f.startswith(names) for f in frames)

    if has(WARM_STEPS[0][1]):  # the parse, even where a deep stack lost its warm-up frames
        return WARM_STEPS[0][0]
    steps = WARM_STEPS if has(("ExecSetParamPlan",)) else ROW_STEPS
    for name, markers in steps:
        if has(markers):
            return name
    return "warm: other (copies of the answer between functions)" if steps is WARM_STEPS \
        else "other"


def main() -> None:
    samples = stacks(sys.argv[1])
    totals: collections.Counter[str] = collections.Counter()
    leaves: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for frames in samples:
        name = step(frames)
        totals[name] += 1
        leaves[name][frames[0] if frames else "?"] += 1
    n = max(len(samples), 1)
    for name, count in totals.most_common():
        top = ", ".join(f"{leaf} {100 * k / n:.1f}" for leaf, k in leaves[name].most_common(4))
        print(f"{100 * count / n:5.1f}%  {name}   ({top})")
    print(f"{len(samples)} samples")


if __name__ == "__main__":
    main()
