# One image for Reelay's API, worker and provider emulator (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first: this layer is rebuilt only when pyproject.toml changes. The `stack`
# extra (Temporal CLI, SeaweedFS) is for the local stack and is not installed here.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY . .
RUN pip install --no-deps . \
    && useradd --system --uid 10001 --no-create-home --home-dir /app reelay \
    && mkdir -p /data/emulator \
    && chown -R reelay /data

USER reelay
ENV REELAY_DATA_DIR=/data \
    REELAY_EMULATOR_DATA_DIR=/data/emulator \
    REELAY_API_HOST=0.0.0.0

EXPOSE 8000 8100
# The API by default; docker-compose.yml runs `python worker.py` and `python -m providers.emulator`
# from the same image.
CMD ["python", "-m", "api"]
