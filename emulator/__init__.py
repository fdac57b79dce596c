"""The provider emulator: a real HTTP server speaking the upstream providers' wire protocols.

Run it with `python -m emulator`. Each protocol lives under its own prefix followed
by the real API's paths: `/runway/v1/...`, `/luma/dream-machine/v1/...`, `/gemini/v1beta/...`,
`/fal/{model_id}` (the queue), `/replicate/v1/...`. Prompts can carry behaviour directives
such as `[emu gen=2 refuse]` (see `directives.py`); every directive works on every protocol.
Tasks created with a callback URL are reported to it as soon as they end (`callbacks.py`).
Control endpoints: `GET /healthz`, `GET|POST /_emulator/config`,
`GET /_emulator/submissions?provider=`, `GET /_emulator/stats`, `POST /_emulator/reset`.
"""
