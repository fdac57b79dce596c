# One image for Reelay's API and worker (see docker-compose.yml). The provider emulator is not
# part of the product: it has its own image, emulator/Dockerfile.
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

# The product only: no emulator, tests or benchmarks.
COPY README.md worker.py ./
COPY api ./api
COPY workflows ./workflows
COPY activities ./activities
COPY providers ./providers
COPY reelay ./reelay
RUN pip install --no-deps . \
    && useradd --system --uid 10001 --no-create-home --home-dir /app reelay \
    && mkdir -p /data \
    && chown -R reelay /data

USER reelay
ENV REELAY_DATA_DIR=/data \
    REELAY_API_HOST=0.0.0.0

EXPOSE 8000
# The API by default; docker-compose.yml runs `python worker.py` from the same image.
CMD ["python", "-m", "api"]
