"""Running the partition states on a client and merging them with Dask's tree reduction.

The partition states are persisted first so the client can follow them
(progress, and the first error in input order), then
``dask.bag.Bag.reduction`` merges them in a tree of fan-in ``split_every``.
If a worker dies, the scheduler recomputes what it held from the lineage.
"""

from __future__ import annotations

from typing import Any

from xent.dask._plan import Part
from xent.dask._tasks import (
    InputFailure,
    frame_state,
    merge_states,
    part_state,
    partition,
)
from xent.scoring import Progress, ScoreInputError, ScoreSpec

__all__ = ["run_frame", "run_parts"]


def _follow(client: Any, bag: Any, rows: list[int | None], *, progress: bool) -> Any:
    """Persist ``bag`` (one state, or one InputFailure, per partition) and wait for it,
    raising the error of the first failed partition in input order, as the local engine would.

    Each finished partition's value (a state of a few KB) comes to the client, to see
    whether it holds bad input and, for CSV, how many rows it had."""
    from distributed import (  # optional dependency (the dask extra)
        as_completed,
        futures_of,
    )

    persisted = client.persist(bag)
    futures = futures_of(persisted)
    index = {f.key: int(f.key[1]) for f in futures}  # bag keys are (name, partition)
    by_index = {index[f.key]: f for f in futures}
    known = [r for r in rows if r is not None]
    bar = Progress(total=sum(known) if len(known) == len(rows) else None) if progress else None
    first_error: int | None = None
    failures: dict[int, Exception] = {}
    try:
        for f in as_completed(futures, loop=client.loop):
            i = index[f.key]
            if f.status != "finished":  # cancelled (after an earlier error), or a crash: re-raised below
                continue
            [value] = f.result()
            if isinstance(value, InputFailure):
                failures[i] = value.error
                if first_error is None or i < first_error:
                    first_error = i
                    # later partitions cannot change which error comes first: stop them
                    client.cancel([g for j, g in by_index.items() if j > i and not g.done()])
            elif bar is not None:
                n = rows[i]
                bar.advance(n if n is not None else (0 if value is None else int(value.rows)))
        crashed = sorted(i for i, f in by_index.items() if f.status == "error")
        if crashed and (first_error is None or crashed[0] < first_error):
            by_index[crashed[0]].result()  # re-raises the worker's exception here
        if first_error is not None:
            raise failures[first_error]
    except BaseException:
        client.cancel(futures)
        raise
    finally:
        if bar is not None:
            bar.close()
    return persisted


def _reduce(client: Any, bag: Any, *, split_every: int) -> Any:
    return client.compute(bag.reduction(merge_states, merge_states, split_every=split_every)).result()


def run_parts(client: Any, parts: list[Part], spec: ScoreSpec, *, progress: bool, split_every: int) -> Any:
    """The merged state of file partitions ``parts``."""
    import dask.bag as db  # optional dependency (the dask extra)
    from dask.delayed import delayed  # optional dependency (the dask extra)

    # pure=False: fresh keys per call, so a rerun rereads the files instead of
    # reusing results a long-lived client may still hold for the same paths
    bag = db.from_delayed([delayed(partition, pure=False)(part_state, p, spec) for p in parts])
    persisted = _follow(client, bag, [p.rows for p in parts], progress=progress)
    return _reduce(client, persisted, split_every=split_every)


def run_frame(client: Any, frame: Any, spec: ScoreSpec, *, progress: bool, split_every: int) -> Any:
    """The merged state of the partitions of a dask DataFrame ``frame``."""
    import dask.bag as db  # optional dependency (the dask extra)
    from dask.delayed import delayed  # optional dependency (the dask extra)

    missing = [c for c in spec.columns if c not in frame.columns]
    if missing:
        raise ScoreInputError(f"missing column(s) {missing}; the DataFrame has {list(frame.columns)}",
                              source="<dask DataFrame>", column=missing[0])
    frame = frame[list(spec.columns)]
    bag = db.from_delayed([delayed(partition, pure=False)(frame_state, p, spec, i)
                           for i, p in enumerate(frame.to_delayed())])
    persisted = _follow(client, bag, [None] * frame.npartitions, progress=progress)
    return _reduce(client, persisted, split_every=split_every)
