"""The seed002 dialect: `shapes` (request models, status words, rendering; no FastAPI) and
`routes` (its HTTP routes)."""
