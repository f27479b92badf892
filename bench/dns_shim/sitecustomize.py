"""Loaded by the benchmark's child processes (``PYTHONPATH=bench/dns_shim``): names under
``.localhost`` resolve to 127.0.0.1, as RFC 6761 §6.3 says they should (glibc without
nss-myhostname does not). The workload gives feeds many host names (``h042.localhost``)
so per-host politeness limits see many hosts, as on the internet, while every byte stays
on the loopback interface. Any other name resolves as usual."""

import socket

_getaddrinfo = socket.getaddrinfo


def _loopback_getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):  # noqa: A002
    name = host.decode() if isinstance(host, bytes) else host
    if isinstance(name, str) and name.lower().rstrip(".").endswith(".localhost"):
        host = "127.0.0.1"
    return _getaddrinfo(host, port, family, type, proto, flags)


socket.getaddrinfo = _loopback_getaddrinfo
