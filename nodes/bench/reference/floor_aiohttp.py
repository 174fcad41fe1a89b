"""The floor experiment's bare aiohttp server: one route answering a fixed lookup.

Run as ``python -m nodes.bench.reference.floor_aiohttp PORT``."""
import sys

from aiohttp import web


async def hello(request):
    return web.json_response({"title": "x", "quantity": 1, "price": 1})

if __name__ == "__main__":
    app = web.Application()
    app.router.add_get("/lookup/{id}", hello)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
