"""Daily clearing (清算/对账): the network's clearing file, its import and matching against the
acquirer's transactions, and the differences the support desk resolves (docs/clearing.md)."""
