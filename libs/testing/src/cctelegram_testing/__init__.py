"""Dev-only test tooling of the CCTelegram suite (never installed in an image).

- ``nats``: the NATS server fixture (the CLI's embedded runner) and free ports
- ``processes``: a service as a real child process (``ServiceProcess``)
- ``gateway``: a service's ASGI app with its lifespan; the auth + gateway process ``Stack``
- ``notifier``: outbox publishing, stream reading, ``wait_until``, ``NotifierProcess``
- ``sandbox``: a real Telegram sandbox server for a block (``run_sandbox``)
- ``suite``: ``cctelegram up`` as a real process (``start_suite``), for tests and ``bench/``
- ``otlp``: a real OTLP/HTTP trace receiver
- ``debian``: ``ensure_debian_package`` (runs apt-get; test machines only)
- ``claude_code``: ``ensure_claude_code`` (npm-installs the pinned Claude Code CLI into a cache)
- ``isolation``: the per-service isolation check of ``make test``
"""
