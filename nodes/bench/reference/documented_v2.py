"""The documented code, rebuilt from its document so that Bazar can be measured beside it:
"Bazar V2" (the design document Bazar is built from; its rules in docs/protocol.md) as its author built
it — Flask services on Flask's threaded server, Flask-style SQLAlchemy over one SQLite file
per replica, `requests` for every call between services (a new connection each time), LRU
caches of 3 look-ups and 10 searches, round-robin with failover, the documented timeouts.

It is a yardstick, not part of Bazar: nothing here is imported by Bazar, and it keeps the
documented weak points (W1–W8) on purpose. Only the benchmark (`launcher.py bench
--experiment load --against URL`) and its test use it.

    python3 -m nodes.bench.reference.documented_v2 --catalogs 2 --orders 2 --port 4100

starts the five services on 127.0.0.1 (ports from --port up), prints the front-end's URL,
and stops them all on Ctrl+C, SIGTERM, or when this process dies (they follow their parent).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import OrderedDict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
BOOKS = json.loads((ROOT / "assets" / "books.json").read_text())
CONNECT = {"frontend": 0.2, "order": 0.15, "catalog": 0.1}
TOTAL = {"frontend": 2.0, "order": 1.5, "catalog": 1.0}


def _books() -> list[dict]:
    rows = BOOKS["books"] if isinstance(BOOKS, dict) else BOOKS
    return [{"id": b["id"], "title": b["title"], "topic": b["topic"], "price": b["price"],
             "quantity": b.get("quantity", b.get("stock"))} for b in rows]


# ---- catalog ----------------------------------------------------------------------------------
def catalog_app(db: Path, peers: list[str], frontend: str):
    import requests
    from flask import Flask, jsonify, request
    from sqlalchemy import Column, Integer, String, create_engine, select
    from sqlalchemy.orm import Session, declarative_base

    Base = declarative_base()

    class Book(Base):
        __tablename__ = "book"
        id = Column(Integer, primary_key=True)
        title = Column(String)
        topic = Column(String)
        price = Column(Integer)
        quantity = Column(Integer)
        seq = Column(Integer, default=0)

    engine = create_engine(f"sqlite:///{db}", connect_args={"check_same_thread": False})
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        if s.scalar(select(Book).limit(1)) is None:
            s.add_all(Book(seq=0, **b) for b in _books())
            s.commit()
    valid: set[int] = set()
    app = Flask("catalog")

    def row(book_id: int) -> dict | None:
        with Session(engine) as s:
            b = s.get(Book, book_id)
            return None if b is None else {"id": b.id, "title": b.title, "topic": b.topic, "price": b.price,
                                           "quantity": b.quantity, "seq": b.seq}

    def store(copy: dict) -> None:
        with Session(engine) as s:
            b = s.get(Book, copy["id"])
            for key in ("title", "topic", "price", "quantity", "seq"):
                setattr(b, key, copy[key])
            s.commit()

    def call(method: str, url: str, **kw):
        return requests.request(method, url, timeout=(CONNECT["catalog"], TOTAL["catalog"]), **kw)

    def public(b: dict) -> dict:
        return {"title": b["title"], "quantity": b["quantity"], "price": b["price"]}

    def hop(book_id: int, chain: list[str], upstream: int) -> tuple[int, dict | None]:
        """docs/protocol.md's read: ask a random peer not yet asked (the chain carries who was, and
        the highest seq seen), until one holds the book as valid; the last one decides."""
        own = row(book_id)
        if book_id in valid:
            return 200, own
        left = [p for p in peers if p not in chain]
        random.shuffle(left)
        for peer in left:
            try:
                r = call("GET", f"{peer}/rep/get/{book_id}",
                         params={"chain": "|".join(chain), "seq": max(upstream, own["seq"])})
            except requests.RequestException:
                chain = chain + [peer]  # skipped
                continue
            if r.status_code == 200:
                copy = r.json()
                store(copy)
                valid.add(book_id)
                return 200, copy
            if own["seq"] > upstream:  # a 409 from further down: ours is the newest seen
                valid.add(book_id)
                return 200, own
            return 409, None
        if own["seq"] >= upstream:
            valid.add(book_id)
            return 200, own
        return 409, None

    @app.get("/query/item/<int:book_id>")
    def query_item(book_id: int):
        if row(book_id) is None:
            return jsonify(message="Book with the specified ID does not exist"), 404
        status, copy = hop(book_id, [request.host_url.rstrip("/")], 0)
        return (jsonify(public(copy)), 200) if status == 200 else (jsonify(message="conflict"), 409)

    @app.get("/rep/get/<int:book_id>")
    def rep_get(book_id: int):
        chain = [c for c in request.args.get("chain", "").split("|") if c] + [request.host_url.rstrip("/")]
        status, copy = hop(book_id, chain, int(request.args.get("seq", 0)))
        return (jsonify(copy), 200) if status == 200 else (jsonify(message="conflict"), 409)

    @app.get("/query/topic/<topic>")
    def query_topic(topic: str):
        with Session(engine) as s:
            found = s.scalars(select(Book).where(Book.topic.contains(topic))).all()
            return jsonify([{"id": b.id, "title": b.title, "topic": b.topic} for b in found])

    @app.put("/update/<int:book_id>")
    def update(book_id: int):
        own = row(book_id)
        if own is None:
            return jsonify(message="Book with the specified ID does not exist"), 404
        if book_id not in valid:
            newer = []
            for peer in peers:
                try:
                    r = call("PUT", f"{peer}/rep/check/{book_id}", json={"seq": own["seq"]})
                except requests.RequestException:
                    continue
                if r.status_code == 409:
                    newer.append(r.json())
            if newer:
                store(max(newer, key=lambda b: b["seq"]))
                valid.add(book_id)
                return jsonify(message="outdated"), 409
        new = dict(own, seq=own["seq"] + 1, **(request.get_json(silent=True) or {}))
        for peer in peers:
            try:
                call("PUT", f"{peer}/rep/update/{book_id}", json=new)
            except requests.RequestException:
                pass
        store(new)
        valid.add(book_id)
        for path in (f"/invalidate/item/{book_id}", f"/invalidate/topic/{new['topic']}"):
            try:
                call("DELETE", frontend + path)
            except requests.RequestException:
                pass
        return jsonify({k: new[k] for k in ("title", "quantity", "topic", "price")})

    @app.put("/rep/check/<int:book_id>")
    def rep_check(book_id: int):
        own = row(book_id)
        if own["seq"] > request.get_json()["seq"]:
            return jsonify(own), 409
        return jsonify(message="ok")

    @app.put("/rep/update/<int:book_id>")
    def rep_update(book_id: int):
        store(request.get_json())
        valid.add(book_id)
        return jsonify(message="ok")

    return app


# ---- order --------------------------------------------------------------------------------------
def order_app(db: Path, catalog: str):
    import requests
    from flask import Flask, jsonify
    from sqlalchemy import Column, Float, Integer, create_engine
    from sqlalchemy.orm import Session, declarative_base

    Base = declarative_base()

    class Order(Base):
        __tablename__ = "orders"
        id = Column(Integer, primary_key=True)
        book_id = Column(Integer)
        time = Column(Float)

    engine = create_engine(f"sqlite:///{db}", connect_args={"check_same_thread": False})
    Base.metadata.create_all(engine)
    app = Flask("order")
    timeout = (CONNECT["order"], TOTAL["order"])

    @app.put("/buy/<int:book_id>")
    def buy(book_id: int):
        try:
            while True:
                r = requests.get(f"{catalog}/query/item/{book_id}", timeout=timeout)
                if r.status_code == 404:
                    return jsonify(message="Book with the specified ID does not exist"), 404
                book = r.json()
                if book["quantity"] <= 0:
                    return jsonify(success=False, message="Book with the specified ID is out of stock")
                w = requests.put(f"{catalog}/update/{book_id}", json={"quantity": book["quantity"] - 1},
                                 timeout=timeout)
                if w.status_code == 409:
                    continue
                with Session(engine) as s:
                    s.add(Order(book_id=book_id, time=time.time()))
                    s.commit()
                return jsonify(success=True, message="Book with the specified ID purchased")
        except requests.RequestException:
            return jsonify(message="Catalog server could not be reached"), 504

    return app


# ---- front-end ------------------------------------------------------------------------------------
def frontend_app(catalogs: list[str], orders: list[str], lookup_size: int = 3, search_size: int = 10):
    import requests
    from flask import Flask, Response, jsonify
    from flask import request as incoming

    app = Flask("frontend")

    @app.after_request
    def echo_request_id(response: Response) -> Response:
        """Not the documented code's: the load benchmark's request id sent back, as Bazar's
        front-end does, so that both are timed per request alike (nodes/bench/load.py)."""
        tag = incoming.headers.get("X-Bazar-Trace")
        if tag is not None:
            response.headers["X-Bazar-Trace"] = tag
        return response
    lookups: OrderedDict[int, bytes] = OrderedDict()
    searches: OrderedDict[str, tuple[bytes, set[str]]] = OrderedDict()
    turns = {"catalog": list(catalogs), "order": list(orders)}
    lock = threading.Lock()

    def put(cache: OrderedDict, key, value, size: int) -> None:
        with lock:
            cache[key] = value
            cache.move_to_end(key)
            while len(cache) > size:
                cache.popitem(last=False)

    def round_robin(kind: str, method: str, path: str, factor: float = 1.0):
        with lock:
            ports = turns[kind]
            first = ports.pop(0)
            ports.append(first)
            order = [first] + [p for p in ports if p != first]
        for address in order:
            try:
                r = requests.request(method, address + path,
                                     timeout=(CONNECT["frontend"] * factor, TOTAL["frontend"] * factor))
            except requests.RequestException:
                continue
            if r.status_code == 504:
                continue
            return r
        return None

    @app.get("/lookup/<book_id>")
    def lookup(book_id: str):
        if not book_id.isdigit():
            return jsonify(message="Book ID must be a number"), 422
        key = int(book_id)
        with lock:
            if key in lookups:
                lookups.move_to_end(key)
                return Response(lookups[key], mimetype="application/json")
        r = round_robin("catalog", "GET", f"/query/item/{key}")
        if r is None:
            return jsonify(message="No catalog server could be reached"), 504
        if r.status_code == 200:
            put(lookups, key, r.content, lookup_size)
        return Response(r.content, r.status_code, mimetype="application/json")

    @app.get("/search/<topic>")
    def search(topic: str):
        with lock:
            if topic in searches:
                searches.move_to_end(topic)
                return Response(searches[topic][0], mimetype="application/json")
        r = round_robin("catalog", "GET", f"/query/topic/{topic}")
        if r is None:
            return jsonify(message="No catalog server could be reached"), 504
        put(searches, topic, (r.content, {b["topic"] for b in r.json()}), search_size)
        return Response(r.content, r.status_code, mimetype="application/json")

    @app.put("/buy/<book_id>")
    def buy(book_id: str):
        if not book_id.isdigit():
            return jsonify(message="Book ID must be a number"), 422
        r = round_robin("order", "PUT", f"/buy/{book_id}", factor=2.0)
        if r is None:
            return jsonify(message="No order server could be reached"), 504
        return Response(r.content, r.status_code, mimetype="application/json")

    @app.delete("/invalidate/item/<int:book_id>")
    def invalidate_item(book_id: int):
        with lock:
            lookups.pop(book_id, None)
        return "", 204

    @app.delete("/invalidate/topic/<topic>")
    def invalidate_topic(topic: str):
        with lock:
            for key in [k for k, (_body, topics) in searches.items() if topic in topics]:
                del searches[key]
        return "", 204

    return app


# ---- the five processes -------------------------------------------------------------------------
def serve(role: str, port: int, config: dict) -> None:
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    if role == "catalog":
        app = catalog_app(Path(config["db"]), config["peers"], config["frontend"])
    elif role == "order":
        app = order_app(Path(config["db"]), config["catalog"])
    else:
        app = frontend_app(config["catalogs"], config["orders"])
    app.run(host="127.0.0.1", port=port, threaded=True)


def _die_with_parent() -> None:
    """Linux: this process gets SIGTERM when the one that started it dies, however it dies."""
    import ctypes

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def start(catalogs: int, orders: int, port: int, data: Path) -> tuple[str, list[subprocess.Popen]]:
    url = lambda p: f"http://127.0.0.1:{p}"  # noqa: E731
    frontend_port, catalog_ports = port, [port + 1 + i for i in range(catalogs)]
    order_ports = [port + 1 + catalogs + i for i in range(orders)]
    plans = [("frontend", frontend_port, {"catalogs": [url(p) for p in catalog_ports],
                                          "orders": [url(p) for p in order_ports]})]
    for i, p in enumerate(catalog_ports):
        plans.append(("catalog", p, {"db": str(data / f"catalog{i}.db"), "frontend": url(frontend_port),
                                     "peers": [url(q) for q in catalog_ports if q != p]}))
    for i, p in enumerate(order_ports):
        plans.append(("order", p, {"db": str(data / f"order{i}.db"), "catalog": url(catalog_ports[i % catalogs])}))
    log = open(data / "services.log", "ab")  # noqa: SIM115 (the children hold it open)
    processes = [subprocess.Popen([sys.executable, "-m", "nodes.bench.reference.documented_v2", "--serve", role,
                                   "--port", str(p), "--config", json.dumps(config)], cwd=ROOT,
                                  stdout=log, stderr=log, preexec_fn=_die_with_parent) for role, p, config in plans]
    log.close()
    return url(frontend_port), processes


def wait_ready(url: str, count: int, timeout: float = 30.0) -> None:
    """Until the ``count`` services on the ports from ``url``'s up accept connections."""
    import socket

    first = int(url.rsplit(":", 1)[1])
    deadline = time.monotonic() + timeout
    for port in range(first, first + count):
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the documented code's service on port {port} did not start "
                                       f"within {timeout:.0f} s") from None
                time.sleep(0.1)


def stop(processes: list[subprocess.Popen]) -> None:
    for p in processes:
        p.terminate()
    for p in processes:
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalogs", type=int, default=2)
    parser.add_argument("--orders", type=int, default=2)
    parser.add_argument("--port", type=int, default=4100)
    parser.add_argument("--serve", choices=("frontend", "catalog", "order"), help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, json.loads(args.config))
        return 0
    with tempfile.TemporaryDirectory(prefix="documented-v2-") as data:
        url, processes = start(args.catalogs, args.orders, args.port, Path(data))
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        try:
            wait_ready(url, len(processes))
            print(f"the documented code ({args.catalogs} catalog, {args.orders} order replicas) at {url}; "
                  f"its output in {data}/services.log", flush=True)
            while all(p.poll() is None for p in processes):
                time.sleep(0.5)
            print("a service exited; stopping the others", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 0
        finally:
            stop(processes)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
