"""One RESP command to a redis-server on 127.0.0.1 and its parsed reply (standard library only)."""
import socket

from .common import LOOPBACK, BenchError


def resp_command(*args):
    """A command encoded as a RESP array of bulk strings."""
    payload = f"*{len(args)}\r\n".encode()
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        payload += b"$%d\r\n%s\r\n" % (len(a), a)
    return payload


def _read_reply(f, command):
    line = f.readline(1 << 16)
    kind, value = line[:1], line[1:].strip()
    if kind == b"$":
        n = int(value)
        return None if n < 0 else f.read(n + 2)[:-2].decode(errors="replace")
    if kind == b"+":
        return value.decode()
    if kind == b":":
        return int(value)
    if kind == b"*":
        n = int(value)
        return None if n < 0 else [_read_reply(f, command) for _ in range(n)]
    if kind == b"-":
        raise BenchError(f"redis {command}: {value.decode(errors='replace')}")
    raise BenchError(f"unexpected redis reply to {command}: {line[:100]!r}")


def redis_query(port, *args, timeout=10.0):
    """str for a (bulk) string reply, int for an integer, a list for an array, None for a nil; raises
    BenchError on an error reply."""
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as s:
        s.sendall(resp_command(*args))
        return _read_reply(s.makefile("rb"), args[0])
