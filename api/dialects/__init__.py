"""Client dialects: one internal job model, a thin translator per API shape in `seeds/`.

Each dialect is a package: `shapes` (its request models, status words and rendering of a
`JobView`; no FastAPI, so the worker can render webhooks with it) and `routes` (its HTTP
routes and error shape). `registry` maps each dialect's name to its renderer. A job answers
in the dialect that created it; on a path only one dialect speaks, a job of another dialect
answers in that path's dialect.

- native (seed 000), `native`: `POST /v1/video/generations`, `GET /v1/video/generations`
  (the listing), `GET /v1/video/generations/{id}`, `POST .../{id}/cancel`,
  `GET .../{id}/content`, `GET .../{id}/thumbnail` (the signed `video_url` of every dialect
  points there).
- seed 001, `seed001`: `POST /v1/video/generations`, `GET /v1/video/generations/{id}`,
  shared with the native dialect.
- seed 002, `seed002`: `POST /v2/videos/generate`, `GET /v2/jobs/{jobId}`.
- seed 003, `seed003`: `POST /api/v1/videos/generate`,
  `GET /api/v1/videos/generations/{id}`.
- seed 004, `seed004`: `POST /v1/videos`, `GET /v1/videos/{id}` (shared with OpenAI),
  `GET /v1/videos/{id}/download`.
- OpenAI, `openai`: `POST /v1/videos`, `GET /v1/videos/{id}` (shared with seed 004),
  `GET /v1/videos`, `DELETE /v1/videos/{id}`, `GET /v1/videos/{id}/content`.

Shared by all: `videos` dispatches the `/v1/videos` routes of seed 004 and OpenAI; `bodies`
reads and checks request bodies; `common` submits and reads jobs; `links` signs download
links; `outcome` reports failed and cancelled jobs; `deletion` records deleted jobs (and reads
the older tombstones); `webhooks` checks a request's webhook fields.
"""
