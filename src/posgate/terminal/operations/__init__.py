"""One module per business word (sign_on, sale, void, refund, preauth, offline, reversal,
settlement, batch_upload, signature, parameters, echo...). Each exposes ``build``,
``on_reply`` and ``on_timeout`` (pure; see :mod:`posgate.terminal.machine`), and the main
operations a ``validate`` that refuses a request before anything is sent."""
