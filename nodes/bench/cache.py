"""The caching lesson (issue 26 item 5): lookups over many books, some far more popular than
others (a Zipf distribution: the book of rank r is asked for in proportion to 1/r^s), and the
front-end's hit ratio and latency against the size of its lookup cache. With the documents'
seven books and a cache of 3 the hit ratio is fixed by arithmetic; over a thousand books with
a skewed popularity it is what a cache is for.

Every cache size sees the very same lookups (one seeded draw), on a fresh cluster of its own,
so the sizes differ in nothing else. The front-end's cache evicts the least recently used
entry, and LRU is a stack algorithm: on one sequence of lookups a larger cache hits at least as
often as a smaller one, and once it holds every book asked for, only each book's first lookup
misses."""
from __future__ import annotations

import itertools
import random
from dataclasses import replace

from nodes.bench.common import STAT_COLUMNS, V2, Context, Table, stats_row
from nodes.core.books import generate_catalog, write_catalog
from nodes.verify.workload import Request, Runner, Stats

BOOKS = 1000
SKEW = 1.0
SIZES = (1, 3, 10, 30, 100, 300)
#: The documents' lookup cache: the size marked in the table and the plot.
DOCUMENTED_SIZE = 3


def zipf_lookups(count: int, books: int, skew: float, seed: int = 26) -> list[int]:
    """``count`` book ids in 1..``books``, the book of rank r drawn in proportion to 1/r^skew;
    ranks are dealt to ids at random (seeded), so that the popular books are not the low ids."""
    rng = random.Random(seed)
    ids = list(range(1, books + 1))
    rng.shuffle(ids)
    weights = list(itertools.accumulate(1 / rank ** skew for rank in range(1, books + 1)))
    return rng.choices(ids, cum_weights=weights, k=count)


async def cache_sizes(ctx: Context, books: int = BOOKS, skew: float = SKEW,
                      sizes: tuple[int, ...] = SIZES) -> list[Table]:
    lookups = zipf_lookups(max(ctx.count, 1000), books, skew)
    catalog = ctx.data_root / f"catalog-{books}.csv"
    write_catalog(generate_catalog(books, seed=26), catalog)
    ctx.progress.plan(len(sizes) * len(lookups))
    rows, ratios = [], {}
    for size in sizes:
        cluster = replace(V2, lookup_cache=size, books=catalog)
        async with ctx.cluster(cluster, f"cache-{size}") as supervisor:
            ctx.progress.doing(f"{len(lookups)} lookups, a lookup cache of {size}")
            async with Runner(supervisor.frontend.address) as runner:
                results = await runner.sequence([Request("GET", f"/lookup/{book}") for book in lookups],
                                                ctx.progress.step)
            cache = (await supervisor.admin("frontend", "GET", "/admin/state"))["caches"]["lookup"]
        stats = Stats.of(results)
        ratios[size] = cache["hits"] / max(1, cache["hits"] + cache["misses"])
        label = f"{size}" + (" (the documents')" if size == DOCUMENTED_SIZE else "")
        rows.append(stats_row(label, stats, round(100 * ratios[size], 1), stats.errors))
    distinct = len(set(lookups))
    ceiling = 1 - distinct / len(lookups)
    verdict = [
        f"Measured: the same {len(lookups)} lookups over {books} books (Zipf, s = {skew}: {distinct} different "
        f"books asked for) on a fresh 2 + 2 cluster per cache size. A cache of {DOCUMENTED_SIZE}, the documents', "
        f"hits {100 * ratios.get(DOCUMENTED_SIZE, 0):.1f} %; {max(sizes)} hits {100 * ratios[max(sizes)]:.1f} %. "
        f"No cache can do better than {100 * ceiling:.1f} % on these lookups: each book's first lookup misses.",
        "The front-end's cache evicts the least recently used book: on one sequence of lookups a larger cache "
        "hits at least as often as a smaller one.",
    ]
    return [Table(f"The lookup cache's size: {len(lookups)} lookups over {books} books, Zipf s = {skew}",
                  ["cache size", *STAT_COLUMNS, "hit ratio %", "errors"], rows, verdict,
                  plot=(5, "% of lookups", "hit ratio"))]
