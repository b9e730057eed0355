"""Running the partition states on a client and merging them with Dask's tree reduction.

The partition states are persisted first so the client can follow them
(progress, and the first error in input order), then
``dask.bag.Bag.reduction`` merges them in a tree of fan-in ``split_every``.
If a worker dies, the scheduler recomputes what it held from the lineage.
"""

from __future__ import annotations

from typing import Any

from xent.dask._plan import Part
from xent.dask._tasks import frame_state, merge_states, part_state

__all__ = ["run_frame", "run_parts"]


def _rows_of(future: Any) -> int:
    # A partition without a known row count (CSV): read it off its state, a few KB.
    state = future.result()[0]
    return 0 if state is None else int(state.rows)


def _follow(client: Any, bag: Any, rows: list[int | None], *, progress: bool) -> Any:
    """Persist ``bag`` (one state per partition) and wait for it, raising the error
    of the first failed partition in input order, as the local engine would."""
    from distributed import as_completed, futures_of

    from xent.scoring._progress import Progress

    persisted = client.persist(bag)
    futures = futures_of(persisted)
    index = {f.key: int(f.key[1]) for f in futures}  # bag keys are (name, partition)
    by_index = {index[f.key]: f for f in futures}
    bar = Progress(total=None if None in rows else sum(rows)) if progress else None
    first_error: int | None = None
    try:
        for f in as_completed(futures, loop=client.loop):
            i = index[f.key]
            if f.status == "error":
                if first_error is None or i < first_error:
                    first_error = i
                    # later partitions cannot change which error comes first: stop them
                    client.cancel([g for j, g in by_index.items() if j > i and not g.done()])
            elif bar is not None and f.status == "finished":
                bar.advance(rows[i] if rows[i] is not None else _rows_of(f))
        if first_error is not None:
            by_index[first_error].result()  # re-raises the worker's ScoreInputError here
    except BaseException:
        client.cancel(futures)
        raise
    finally:
        if bar is not None:
            bar.close()
    return persisted


def _reduce(client: Any, bag: Any, *, split_every: int) -> Any:
    return client.compute(bag.reduction(merge_states, merge_states, split_every=split_every)).result()


def _listed(part: Part, spec: Any) -> list[Any]:
    return [part_state(part, spec)]  # a dask.bag partition is a list


def run_parts(client: Any, parts: list[Part], spec: Any, *, progress: bool, split_every: int) -> Any:
    """The merged state of file partitions ``parts``."""
    import dask
    import dask.bag as db

    # pure=False: fresh keys per call, so a rerun rereads the files instead of
    # reusing results a long-lived client may still hold for the same paths
    bag = db.from_delayed([dask.delayed(_listed, pure=False)(p, spec) for p in parts])
    persisted = _follow(client, bag, [p.rows for p in parts], progress=progress)
    return _reduce(client, persisted, split_every=split_every)


def run_frame(client: Any, frame: Any, spec: Any, *, progress: bool, split_every: int) -> Any:
    """The merged state of the partitions of a dask DataFrame ``frame``."""
    import dask
    import dask.bag as db

    missing = [c for c in spec.columns if c not in frame.columns]
    if missing:
        from xent.scoring import ScoreInputError

        raise ScoreInputError(f"missing column(s) {missing}; the DataFrame has {list(frame.columns)}",
                              source="<dask DataFrame>", column=missing[0])
    frame = frame[list(spec.columns)]
    bag = db.from_delayed([dask.delayed(frame_state, pure=False)(p, spec, i) for i, p in enumerate(frame.to_delayed())])
    persisted = _follow(client, bag, [None] * frame.npartitions, progress=progress)
    return _reduce(client, persisted, split_every=split_every)
