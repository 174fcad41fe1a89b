"""A cluster started from a catalog file of its own (issue 26 item 1): real nodes serve every
book of a generated 2,000-book file, search it by topic, sell from it, and a reset puts the
file's stock back; a bad file stops the launcher with one line naming the file's line."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nodes.core.books import generate_catalog, write_catalog
from tests.support import live, make_cluster

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(120)


async def test_a_cluster_serves_searches_and_sells_the_books_of_its_catalog_file(tmp_path, supervisors):
    books = generate_catalog(2000, seed=5)
    file = tmp_path / "books.csv"
    write_catalog(books, file)
    cluster = make_cluster(tmp_path / "data", catalogs=3, orders=1).with_overrides(books=file)
    async with live(cluster, supervisors) as (supervisor, http):
        last = books[-1]
        status, body = await http.get(f"/lookup/{last.id}")
        assert status == 200 and (body["title"], body["quantity"]) == (last.title, last.quantity)
        assert (await http.get("/lookup/2001"))[0] == 404, "a book the file does not hold"
        topic = books[0].topic
        status, hits = await http.get(f"/search/{topic}")
        assert status == 200 and sorted(h["id"] for h in hits) == [b.id for b in books if b.topic == topic]
        # In pages, as a shop asks a large catalog: in id order, adding up to every hit.
        every = [b.id for b in books if "t" in b.topic.casefold()]
        pages = [(await http.get(f"/search/t?limit=700&offset={at}"))[1] for at in range(0, len(every), 700)]
        assert [h["id"] for page in pages for h in page] == every and all(len(p) <= 700 for p in pages)
        assert [h["id"] for h in (await http.get("/search/t?offset=5&limit=2"))[1]] == every[5:7]
        for bad in ("limit=0", "limit=x", "offset=-1", "limit=2000001"):
            status, body = await http.get(f"/search/t?{bad}")
            assert status == 422 and ("limit" in body["message"] or "offset" in body["message"]), (bad, body)
        sold = books[1499]
        status, body = await http.put(f"/buy/{sold.id}")
        assert status == 200 and body["success"] is True
        for node in ("catalog0", "catalog1", "catalog2"):
            status, body = await http.get(f"/query/item/{sold.id}", node=node, secret=True)
            assert status == 200 and body["quantity"] == sold.quantity - 1, node
        await supervisor.reset()
        await supervisor.wait_settled()
        assert (await http.get(f"/lookup/{sold.id}"))[1]["quantity"] == sold.quantity, "reset: the file's stock"


def test_a_bad_catalog_file_stops_the_launcher_with_one_line_naming_its_line(tmp_path):
    file = tmp_path / "books.csv"
    file.write_text("id,title,topic,price,stock\n1,A,t,10,5\n2,B,t,-3,5\n")
    result = subprocess.run([sys.executable, "launcher.py", "--headless", "--books", str(file)], cwd=ROOT,
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and f"{file} line 3: price must be a number" in result.stderr
