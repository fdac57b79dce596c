"""The provider emulator: a real HTTP server speaking the upstream providers' wire protocols.

Run it with `python -m providers.emulator`. Protocols live under their own prefix (Runway:
`/runway/v1/...`). Prompts can carry behaviour directives such as `[emu gen=2 refuse]` (see
`directives.py`). Control endpoints: `GET /healthz`, `GET|POST /_emulator/config`,
`GET /_emulator/submissions?provider=`, `GET /_emulator/stats`, `POST /_emulator/reset`.
"""
