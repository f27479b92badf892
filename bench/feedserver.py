"""The benchmark's loopback feed server: asyncio, loopback addresses only, its own process.

It listens on one port on 127.0.0.1 (control: ``/_stats``, ``/_reset``) and on every
127.0.0.N address the workload gives a feed (``host`` in the manifest), so each feed
host is a real, distinct peer address on the loopback interface (Linux routes all of
127.0.0.0/8 to ``lo``; no alias or name trick needed).

URLs are ``/<client>/feeds/<name>``; ``<client>`` (earshot, r2e, naive, ...) only keeps
each tool's request counts apart, so every tool sees the same first and second cycle.
The n-th request for a path decides what it gets: the first is cycle 1 (200 + body,
with validators unless the feed is in the ``no_validators`` group), later ones are
cycle 2 (see ``workload.py`` for the groups). Each response waits a seeded random
50-300 ms first, on the event loop (no thread per connection), so thousands of slow
responses can be in flight at once. HTTP/1.1 keep-alive is supported.

``GET /_stats`` returns counters, including how late responses were against their
intended delay (the server's own overhead) and the process's CPU seconds; ``GET
/_reset`` clears them. Run: ``python bench/feedserver.py --dir WORKDIR --port-file F``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import time
from email.utils import formatdate
from pathlib import Path

DELAY_MIN_S, DELAY_MAX_S = 0.050, 0.300
LAST_MODIFIED_V1 = formatdate(1748851200, usegmt=True)  # 2025-06-02
LAST_MODIFIED_V2 = formatdate(1748941200, usegmt=True)


class FeedServer:
    def __init__(self, workdir: Path, seed: int, delay: bool = True) -> None:
        manifest = json.loads((workdir / "manifest.json").read_text())
        self.seed = seed
        self.delay = delay
        self.feeds: dict[str, dict] = {}
        for spec in manifest["feeds"]:
            entry = dict(spec)
            entry["v1"] = (workdir / "feeds" / spec["name"]).read_bytes()
            if spec.get("has_v2"):
                entry["v2"] = (workdir / "feeds" / spec["name"].replace(".xml", ".v2.xml")).read_bytes()
            self.feeds[spec["name"]] = entry
        self.reset()

    def reset(self) -> None:
        self.counts: dict[str, int] = {}
        self.status: dict[str, int] = {}
        self.bytes_sent = 0
        self.lateness_ms: list[float] = []
        self.open_connections = 0
        self.max_open_connections = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.started = time.perf_counter()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self.cpu0 = usage.ru_utime + usage.ru_stime

    def stats(self) -> dict:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        late = sorted(self.lateness_ms)

        def pct(q: float) -> float:
            return round(late[min(len(late) - 1, int(q * len(late)))], 2) if late else 0.0

        return {
            "requests": sum(self.counts.values()), "status": self.status, "bytes_sent": self.bytes_sent,
            "late_ms_p50": pct(0.5), "late_ms_p99": pct(0.99), "late_ms_max": round(late[-1], 2) if late else 0.0,
            "max_open_connections": self.max_open_connections, "max_in_flight": self.max_in_flight,
            "cpu_s": round(usage.ru_utime + usage.ru_stime - self.cpu0, 3),
            "wall_s": round(time.perf_counter() - self.started, 3),
            "max_rss_mb": round(usage.ru_maxrss / 1024, 1),
        }

    def respond(self, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes, float]:
        """(status, headers, body, delay_s) for one GET."""
        parts = path.split("?", 1)[0].strip("/").split("/")
        if len(parts) != 3 or parts[1] != "feeds" or parts[2] not in self.feeds:
            return 404, {"Content-Type": "text/plain"}, b"not found\n", 0.0
        n = self.counts[path] = self.counts.get(path, 0) + 1
        feed = self.feeds[parts[2]]
        delay_s = random.Random(f"{self.seed}:{path}:{n}").uniform(DELAY_MIN_S, DELAY_MAX_S) if self.delay else 0.0
        group = feed["group"]
        version = "v2" if (n >= 2 and group == "new_episodes") else "v1"
        body = feed[version]
        out = {"Content-Type": "application/rss+xml; charset=utf-8"}
        if group != "no_validators":
            etag = f'"{version}-{feed["index"]}"'
            last_modified = LAST_MODIFIED_V2 if version == "v2" else LAST_MODIFIED_V1
            out["ETag"], out["Last-Modified"] = etag, last_modified
            inm, ims = headers.get("if-none-match"), headers.get("if-modified-since")
            # RFC 9110 §13.1.2: If-None-Match wins over If-Modified-Since when both are sent.
            if (inm is not None and etag in [t.strip() for t in inm.split(",")]) or (inm is None and ims == last_modified):
                return 304, {"ETag": etag, "Last-Modified": last_modified}, b"", delay_s
        return 200, out, body, delay_s

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open_connections += 1
        self.max_open_connections = max(self.max_open_connections, self.open_connections)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                received = time.perf_counter()
                lines = head.decode("latin-1").split("\r\n")
                method, path, version = (lines[0].split(" ") + ["", ""])[:3]
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                if path.startswith("/_stats"):
                    status, out, body, delay_s = 200, {"Content-Type": "application/json"}, json.dumps(self.stats()).encode(), 0.0
                elif path.startswith("/_reset"):
                    self.reset()
                    status, out, body, delay_s = 200, {"Content-Type": "text/plain"}, b"ok\n", 0.0
                else:
                    status, out, body, delay_s = self.respond(path, headers)
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
                try:
                    if delay_s:
                        await asyncio.sleep(delay_s)
                    keep_alive = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
                    reason = {200: "OK", 304: "Not Modified", 404: "Not Found"}.get(status, "OK")
                    out = {**out, "Content-Length": str(len(body)) if status != 304 else None,
                           "Connection": "keep-alive" if keep_alive else "close", "Date": formatdate(usegmt=True)}
                    blob = f"HTTP/1.1 {status} {reason}\r\n" + "".join(
                        f"{k}: {v}\r\n" for k, v in out.items() if v is not None) + "\r\n"
                    if not path.startswith("/_"):
                        self.lateness_ms.append((time.perf_counter() - received - delay_s) * 1000)
                        self.status[str(status)] = self.status.get(str(status), 0) + 1
                        self.bytes_sent += len(body)
                    writer.write(blob.encode("latin-1"))
                    if method != "HEAD" and body:
                        writer.write(body)
                    await writer.drain()
                finally:
                    self.in_flight -= 1
                if not keep_alive:
                    return
        except ConnectionError:
            return
        finally:
            self.open_connections -= 1
            try:
                writer.close()
            except Exception:  # noqa: BLE001 - the peer went away
                pass


async def _listen(app: FeedServer, hosts: list[str], port: int) -> tuple[list[asyncio.Server], int]:
    """One server per address, all on one port (the first bind picks it when ``port`` is 0)."""
    servers: list[asyncio.Server] = []
    try:
        for host in hosts:
            server = await asyncio.start_server(app.handle, host, port, backlog=4096, limit=1 << 16)
            servers.append(server)
            port = server.sockets[0].getsockname()[1]
    except OSError:
        for server in servers:
            server.close()
        raise
    return servers, port


async def serve(args: argparse.Namespace) -> None:
    app = FeedServer(Path(args.dir), args.seed, delay=not args.no_delay)
    hosts = ["127.0.0.1", *sorted({f.get("host", "127.0.0.1") for f in app.feeds.values()} - {"127.0.0.1"},
                                  key=lambda h: tuple(map(int, h.split("."))))]
    for attempt in range(10):  # a port free on 127.0.0.1 may be taken on another address
        try:
            servers, port = await _listen(app, hosts, args.port)
            break
        except OSError:
            if args.port or attempt == 9:
                raise
    tmp = Path(args.port_file + ".tmp")
    tmp.write_text(str(port))
    os.replace(tmp, args.port_file)
    await asyncio.gather(*(server.serve_forever() for server in servers))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True, help="workload folder (manifest.json + feeds/)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--no-delay", action="store_true")
    args = parser.parse_args()
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
