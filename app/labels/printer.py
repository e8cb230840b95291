"""Send raw bytes (ZPL) to a network label printer, e.g. a Zebra on TCP port 9100, and only to a
printer on a network the admin allows: Dockhand must not become a port scanner of its own host or
of anything else it can reach."""

from __future__ import annotations

import ipaddress
import logging
import socket
from dataclasses import dataclass

log = logging.getLogger(__name__)

DEFAULT_PORT = 9100
# The private LAN ranges: where a warehouse's printers are, unless DOCKHAND_PRINTER_NETWORKS says otherwise.
DEFAULT_NETWORKS = "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7"
# Never a printer, whatever is allowed: this host, link-local (cloud metadata services), multicast,
# broadcast and "any".
NEVER = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "255.255.255.255/32",
    "::/128", "::1/128", "fe80::/10", "ff00::/8"))
# One text for every failure to print: refused, silent, unknown or not allowed are not told apart.
UNREACHABLE = "The printer did not take the label"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class PrinterError(Exception):
    """A label printer could not be reached or did not take the data; ``message`` is for people."""

    def __init__(self, message: str) -> None:
        """Keep the human-readable ``message``."""
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class PrinterNetworks:
    """The networks printers may be on (DOCKHAND_PRINTER_NETWORKS, comma-separated CIDR ranges)."""

    allowed: tuple[Network, ...]

    @classmethod
    def parse(cls, text: str) -> PrinterNetworks:
        """`text` as ranges; ValueError naming the range that is not one."""
        nets = []
        for part in (p.strip() for p in text.split(",")):
            if part:
                try:
                    nets.append(ipaddress.ip_network(part, strict=False))
                except ValueError as exc:
                    raise ValueError(f"DOCKHAND_PRINTER_NETWORKS: {part!r} is not a network range") from exc
        return cls(tuple(nets))

    @classmethod
    def default(cls) -> PrinterNetworks:
        """The private LAN ranges."""
        return cls.parse(DEFAULT_NETWORKS)

    def permits(self, address: str) -> bool:
        """Whether a printer may be at this IP address."""
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return (not any(ip in net for net in NEVER if net.version == ip.version)
                and any(ip in net for net in self.allowed if net.version == ip.version))

    def __str__(self) -> str:
        return ", ".join(str(net) for net in self.allowed)


def _address(host: str, port: int) -> str:
    """Format host and port for the log, bracketing IPv6 literals."""
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


def _resolve(host: str, port: int, networks: PrinterNetworks) -> tuple[int, tuple]:  # type: ignore[type-arg]
    """The first address of `host` on an allowed network, as (family, socket address). Connecting
    to the address checked, not to the name again, leaves no room for a second DNS answer."""
    for family, _type, _proto, _name, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        if networks.permits(sockaddr[0]):
            return family, sockaddr
    raise PrinterError(f"{host} is not on an allowed printer network")


def send_raw(host: str, port: int, payload: bytes, timeout: float = 5.0, *, networks: PrinterNetworks) -> None:
    """Open a TCP connection to a printer on an allowed network, send all of ``payload``, shut down
    writing and close.

    ``timeout`` bounds the connect and, separately, the whole send. Every failure (not allowed,
    unknown host, refused, silent) is raised as the same ``PrinterError`` (UNREACHABLE); what
    happened goes to the log for the admin."""
    _validate(host, port, timeout)
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise PrinterError("Printer payload must be bytes")
    try:
        family, sockaddr = _resolve(host, port, networks)
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(sockaddr)
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
    except (OSError, PrinterError) as exc:
        log.warning("label printer %s: %s", _address(host, port), getattr(exc, "message", None) or exc)
        raise PrinterError(UNREACHABLE) from exc


def check_address(host: object, port: object, networks: PrinterNetworks) -> None:
    """Raise ``PrinterError`` when ``host``/``port`` could never be a printer's address, or the host
    is not on an allowed network (one message for an unknown and a not-allowed host)."""
    _validate(host, port, 1.0)
    try:
        _resolve(host, port, networks)  # type: ignore[arg-type]
    except (OSError, PrinterError) as exc:
        raise PrinterError(f"Printers must be on the warehouse network ({networks}): enter the address "
                           "of a printer there") from exc
