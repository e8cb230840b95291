"""Send raw bytes (ZPL) to a network label printer, e.g. a Zebra on TCP port 9100."""

from __future__ import annotations

import socket

DEFAULT_PORT = 9100


class PrinterError(Exception):
    """A label printer could not be reached or did not take the data; ``message`` is for people."""

    def __init__(self, message: str) -> None:
        """Keep the human-readable ``message``."""
        super().__init__(message)
        self.message = message


def _address(host: str, port: int) -> str:
    """Format host and port for messages, bracketing IPv6 literals."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _validate(host: object, port: object, timeout: object) -> None:
    """Raise ``PrinterError`` for a missing/odd host, a port outside 1-65535 or a bad timeout."""
    if (not isinstance(host, str) or not host or len(host) > 253
            or any(ch.isspace() or not ch.isprintable() for ch in host)):
        raise PrinterError(f"Printer host {host!r} is not a valid host name or address")
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise PrinterError(f"Printer port {port!r} is not valid; use a number from 1 to 65535")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise PrinterError(f"Printer timeout {timeout!r} must be a positive number of seconds")


def send_raw(host: str, port: int, payload: bytes, timeout: float = 5.0) -> None:
    """Open a TCP connection, send all of ``payload``, shut down writing and close.

    ``timeout`` bounds the connect and, separately, the whole send. Every failure is raised as
    ``PrinterError`` with a message a warehouse worker can act on.
    """
    _validate(host, port, timeout)
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise PrinterError("Printer payload must be bytes")
    where = _address(host, port)
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
    except ConnectionRefusedError as exc:
        raise PrinterError(f"Printer at {where} refused the connection") from exc
    except TimeoutError as exc:
        raise PrinterError(f"Printer at {where} did not answer within {timeout:g} s") from exc
    except socket.gaierror as exc:
        raise PrinterError(f"Printer host {host!r} could not be found") from exc
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise PrinterError(f"Could not send to printer at {where}: {reason}") from exc


def check_address(host: object, port: object) -> None:
    """Raise ``PrinterError`` when ``host``/``port`` could never be a printer's address."""
    _validate(host, port, 1.0)
