"""Catalog files (issue 26 item 1): a cluster starts from any number of books, read from JSON or
CSV and checked line by line; a seeded generator makes large ones."""
from __future__ import annotations

import pytest

from nodes.core.books import CatalogFileError, generate_catalog, read_catalog, seed_books, write_catalog


def test_without_a_file_the_catalog_is_the_documents_seven_books() -> None:
    books = seed_books()
    assert [b.id for b in books] == list(range(1, 8)) and books[1].title == "RPCs for Dummies"


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_a_generated_catalog_reads_back_as_written_and_the_seed_decides_it(tmp_path, suffix) -> None:
    books = generate_catalog(500, seed=3)
    assert [b.id for b in books] == list(range(1, 501)) and books == generate_catalog(500, seed=3)
    assert books != generate_catalog(500, seed=4)
    path = tmp_path / f"books{suffix}"
    write_catalog(books, path)
    assert read_catalog(path) == books


@pytest.mark.parametrize(("text", "said"), [
    ("id,title,topic,price\n1,A,t,10\n", r"line 1: the header must be id,title,topic,price,stock"),
    ("id,title,topic,price,stock\n1,A,t,10,5\n2,B,t,abc,5\n",
     r"line 3: price must be a number of at least 0 \(got 'abc'\)"),
    ("id,title,topic,price,stock\n1,A,t,10,5\n1,B,t,10,5\n", r"line 3: id 1 is used twice"),
    ("id,title,topic,price,stock\n0,A,t,10,5\n", r"line 2: id must be a whole number of at least 1"),
    ("id,title,topic,price,stock\n1,A,t,10,2.5\n", r"line 2: stock must be a whole number of at least 0"),
    ("id,title,topic,price,stock\n1,,t,10,5\n", r"line 2: every book needs a title"),
    ("id,title,topic,price,stock\n", r"holds no book"),
])
def test_a_bad_csv_file_is_named_with_its_line_and_what_to_change(tmp_path, text, said) -> None:
    path = tmp_path / "books.csv"
    path.write_text(text)
    with pytest.raises(CatalogFileError, match=said) as raised:
        read_catalog(path)
    assert str(path) in str(raised.value)


def test_a_bad_json_file_is_named_with_its_line(tmp_path) -> None:
    path = tmp_path / "books.json"
    path.write_text('[\n {"id": 1, "title": "A", "topic": "t", "price": 1, "stock": 1},\n {"id": 2,,}\n]')
    with pytest.raises(CatalogFileError, match=r"books.json line 3: not valid JSON"):
        read_catalog(path)
    path.write_text('[{"id": 1, "title": "A", "topic": "t", "price": -1, "stock": 1}]')
    with pytest.raises(CatalogFileError, match=r"book 1: price must be a number of at least 0 \(got -1\)"):
        read_catalog(path)
    path.write_bytes(b'[{"id": 1, "title": "caf\xe9"}]')
    with pytest.raises(CatalogFileError, match="is not UTF-8 text"):
        read_catalog(path)
    with pytest.raises(CatalogFileError, match="does not exist"):
        read_catalog(tmp_path / "missing.csv")
