"""The POS terminal: a sans-IO core (``machine`` + ``operations``), a durable journal, an
asyncio client and the ``posgate terminal`` commands. See ``machine`` for the theory of operation."""
