"""Upstream: routing by BIN, the acquirer's host-to-host link to a card network (store and
forward, stand-in), and ``posgate network``, a card network with its issuers to talk to.
See docs/upstream.md."""
