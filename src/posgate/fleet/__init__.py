"""Load, faults and audits against a CUP host: the fault proxy (``proxy``), ``posgate fleet``
(``fleet``: many terminal cores in one process), ``posgate chaos`` (``chaos``: a fleet under
injected faults) and the three-ledger audit (``audit``). Everything here targets loopback only."""
