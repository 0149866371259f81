"""The acquiring host: a sans-IO pipeline of participants (core) and its shells (server, store)."""
