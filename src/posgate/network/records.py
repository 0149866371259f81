"""The card network's own records: one row per financial message it answered.

The columns are the contract between the network (this package writes them) and clearing
(``posgate.clearing`` reads them to write the daily clearing file); see docs/upstream.md. The
network keeps them in its own database, never the acquirer's. No clear PAN: ``pan_masked`` and
``pan_token`` (HMAC-SHA256 of the PAN under a network-local key) only.

One table, one definition: it stands in ``posgate.clearing.network_records`` (on a
``MetaData`` of its own, so the acquirer's migrations never see it) and is named here for the
network's code. A repeated message finds the row it already answered by a SELECT
(``posgate.network.server``), not by a constraint.
"""

from __future__ import annotations

from posgate.clearing.network_records import network_metadata as metadata
from posgate.clearing.network_records import network_transactions

__all__ = ["metadata", "network_transactions"]
