"""The provider emulator: a real HTTP server speaking the upstream providers' wire protocols.

Run it with `python -m emulator`. Each protocol lives under its own prefix followed
by the real API's paths: `/runway/v1/...`, `/luma/dream-machine/v1/...`, `/gemini/v1beta/...`,
`/vertex/v1/projects/...` (Veo on Vertex AI, with `/gcs/storage/v1/...` for its `gs://`
outputs), `/fal/{model_id}` (the queue), `/replicate/v1/...`. Prompts can carry behaviour directives
such as `[emu gen=2 refuse]` (see `directives.py`); every directive works on every protocol.
Tasks created with a callback URL are reported to it as soon as they end (`callbacks.py`).

It is strict: each protocol refuses what its provider refuses (per-model ratios, durations,
resolutions, field types and names, as the official SDKs type them; each module names the SDK
version and type its tables come from) with the provider's own error body, and its answers
carry every field the SDKs' response models require (tests/test_emulator_sdks.py drives it
with those SDKs). It is a test and demo tool, not part of the product, and imports nothing of
the gateway: it has its own task vocabulary (`states.py`) and settings (`config.py`).
Control endpoints: `GET /healthz`, `GET|POST /_emulator/config`,
`GET /_emulator/submissions?provider=`, `GET /_emulator/stats`, `POST /_emulator/reset`.
"""
