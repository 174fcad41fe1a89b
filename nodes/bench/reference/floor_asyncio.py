"""The floor experiment's bare asyncio server: the same HTTP/1.1 answer with no framework.

Run as ``python -m nodes.bench.reference.floor_asyncio PORT``."""
import asyncio
import sys

ANSWER = b'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}'


async def serve(reader, writer):
    try:
        while True:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(ANSWER)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", int(sys.argv[1]))
    async with server:
        await server.serve_forever()

if __name__ == "__main__":
    asyncio.run(main())
