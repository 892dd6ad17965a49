#!/usr/bin/env python3
"""Health probes for scripts/infra.sh: each asks a server a real question over its own protocol.

  probe.py port-in-use HOST PORT   exit 0 when something accepts TCP connections there
  probe.py kafka HOST PORT         exit 0 when a Kafka broker answers an ApiVersions request
                                   without error and lists the Produce and Fetch APIs
  probe.py http URL                exit 0 when the URL answers HTTP 200

Only the Python standard library is used, so the probes work before `npm ci` has run.
"""
import socket
import struct
import sys
import urllib.request

TIMEOUT_S = 2.0


def port_in_use(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT_S):
            return True
    except OSError:
        return False


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise OSError("connection closed by the broker")
        buf += chunk
    return buf


def kafka_answers(host: str, port: int) -> bool:
    """Sends ApiVersions v0 (api key 18) and checks the broker's answer."""
    client_id = b"txoutbox-infra-probe"
    correlation_id = 7
    body = struct.pack(">hhih", 18, 0, correlation_id, len(client_id)) + client_id
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT_S) as sock:
            sock.settimeout(TIMEOUT_S)
            sock.sendall(struct.pack(">i", len(body)) + body)
            (size,) = struct.unpack(">i", _recv_exact(sock, 4))
            payload = _recv_exact(sock, size)
    except OSError:
        return False
    got_correlation, error_code, count = struct.unpack(">ihi", payload[:10])
    if got_correlation != correlation_id or error_code != 0:
        return False
    keys = {struct.unpack(">h", payload[10 + 6 * i: 12 + 6 * i])[0] for i in range(count)}
    return 0 in keys and 1 in keys  # Produce and Fetch


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as resp:
            return resp.status == 200
    except Exception:  # noqa: BLE001 - any failure means "not answering yet"
        return False


def main(argv: list[str]) -> int:
    if len(argv) >= 3 and argv[0] == "port-in-use":
        return 0 if port_in_use(argv[1], int(argv[2])) else 1
    if len(argv) >= 3 and argv[0] == "kafka":
        return 0 if kafka_answers(argv[1], int(argv[2])) else 1
    if len(argv) >= 2 and argv[0] == "http":
        return 0 if http_ok(argv[1]) else 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
