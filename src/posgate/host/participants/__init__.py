"""The host's participants, one file per business word (sign_on, sale, void, refund, ...).

Each participant does one thing to the :class:`~posgate.host.context.Context` and votes; the
order they run in is declared in one place, :mod:`posgate.host.routes`.
"""
