"""The merchant console: the web application merchants, their staff and the acquirer's support desk
use every day (FastAPI + Jinja2, server-rendered, zh-CN and English, JSON API under ``/api/v1``).

Theory of operation
-------------------
* ``app.create_app(settings)`` builds the application; ``posgate serve`` runs it with uvicorn.
* Every route declares who may call it with a :class:`posgate.console.auth.Guard` dependency
  (roles, and for cookie sessions the CSRF check on unsafe methods). A route without a guard is
  a bug, and ``tests/console/test_security.py`` enumerates ``app.routes`` to prove there is none
  besides the public ones (login, static files, health, metrics).
* A merchant's users see only their merchant: every service function takes the
  :class:`~posgate.console.auth.Principal` and filters by its ``merchant_id``; an object of
  another merchant is "not found", never "forbidden" (no existence oracle).
* Every change is written to ``audit_log`` (append-only) in the same database transaction as
  the change itself.
* History is never edited: corrections, refunds and make-up entries are new ``transactions``
  rows pointing at their original.
"""
