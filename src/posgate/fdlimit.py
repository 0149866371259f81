"""Open-file limit: a process holding thousands of TCP connections needs as many descriptors.

The soft ``RLIMIT_NOFILE`` is often 1024 while the hard limit allows far more; a process may
raise its own soft limit up to the hard one without privileges. ``posgate serve`` and
``posgate fleet`` do so at start (a host holding 10,000 idle terminals needs 10,000 sockets).
"""

from __future__ import annotations


def raise_fd_limit() -> int:
    """Raise the soft open-file limit to the hard limit; returns the soft limit now in force."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return 0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft == resource.RLIM_INFINITY or soft >= want:
        return int(soft)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (ValueError, OSError):
        return int(soft)
    return int(want)
