"""Client dialects: one internal job model, a thin translator per API shape in `seeds/`.

Each dialect turns its request into `resolve_request` + `api.jobs.build_spec(dialect=...)`
and renders `JobView` in its own field names, status words, and error shape. A job answers
in the dialect that created it; on a path only one dialect speaks, a job of another dialect
answers in that path's dialect.

- native (seed 000), `api.routers.generations`: `POST /v1/video/generations`,
  `GET /v1/video/generations/{id}`, `POST .../{id}/cancel`, `GET .../{id}/content`,
  `GET .../{id}/thumbnail` (the signed `video_url` of every dialect points there).
- seed 001, `seed001`: `POST /v1/video/generations`, `GET /v1/video/generations/{id}`,
  shared with the native dialect.
- seed 002, `seed002`: `POST /v2/videos/generate`, `GET /v2/jobs/{jobId}`.
- seed 003, `seed003`: `POST /api/v1/videos/generate`,
  `GET /api/v1/videos/generations/{id}`.
- seed 004, `seed004`: `POST /v1/videos`, `GET /v1/videos/{id}` (shared with OpenAI),
  `GET /v1/videos/{id}/download`.
- OpenAI, `openai`: `POST /v1/videos`, `GET /v1/videos/{id}` (shared with seed 004),
  `GET /v1/videos`, `DELETE /v1/videos/{id}`, `GET /v1/videos/{id}/content`.

`videos` dispatches the `/v1/videos` routes shared by seed 004 and OpenAI; `deletion` keeps
the tombstones of deleted jobs; `webhooks` checks a request's webhook fields.
"""
