# syntax=docker/dockerfile:1.7
# The kiosk image. GPU (default): CUDA runtime base, Falcon-7B-instruct in 4-bit + adapter.
#   docker build -t hcm-kiosk .                       # GPU
#   docker build -t hcm-kiosk:cpu --build-arg VARIANT=cpu .
# Model weights are never baked in: they live in the /models volume (see docker-compose.yml).

ARG VARIANT=gpu

# ---- base images: the same Python (3.12) in both variants ---------------------------------------
FROM nvidia/cuda:12.8.1-runtime-ubuntu24.04 AS base-gpu
ARG DEBIAN_FRONTEND=noninteractive
# Ubuntu's python3.12 takes security updates under new version numbers: pinning would break rebuilds.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.12 python3.12-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && ln -s /usr/bin/python3.12 /usr/local/bin/python
ENV TORCH_INDEX=https://download.pytorch.org/whl/cu128 EXTRAS=gpu

FROM python:3.12-slim-bookworm AS base-cpu
ENV TORCH_INDEX=https://download.pytorch.org/whl/cpu EXTRAS=cpu

# A stage of this file, chosen by the build argument (not an image from a registry).
# hadolint ignore=DL3006
FROM base-${VARIANT} AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

# ---- build: a virtual environment with runtime dependencies only --------------------------------
FROM base AS build
ARG TORCH_VERSION=2.9.1
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# torch first, from the PyTorch index of the variant, so the resolver keeps it.
RUN pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX}"
COPY pyproject.toml README.md ./
COPY app ./app
COPY training ./training
# The project itself, with the versions pinned by ranges in pyproject.toml.
# hadolint ignore=DL3013
RUN if [ "$EXTRAS" = "gpu" ]; then pip install ".[gpu]"; else pip install .; fi

# ---- runtime ---------------------------------------------------------------------------------------
FROM base AS runtime
LABEL org.opencontainers.image.title="hcm-kiosk" \
      org.opencontainers.image.description="Offline museum-kiosk chatbot about Ho Chi Minh"
RUN groupadd --system --gid 10001 kiosk \
 && useradd --system --uid 10001 --gid kiosk --home-dir /srv/kiosk --shell /usr/sbin/nologin kiosk \
 && mkdir -p /models /data \
 && chown kiosk:kiosk /models /data
WORKDIR /srv/kiosk
COPY --from=build /opt/venv /opt/venv
# The small shipped artefacts (gate, SmolLM2 and encoder adapters, knowledge base, QA pairs, FAQ) are
# part of the image.
COPY --chown=kiosk:kiosk app ./app
COPY --chown=kiosk:kiosk templates ./templates
COPY --chown=kiosk:kiosk static ./static
COPY --chown=kiosk:kiosk data/corpus.jsonl data/faq.yaml ./data/
COPY --chown=kiosk:kiosk data/qa ./data/qa
COPY --chown=kiosk:kiosk data/offtopic/hard_negatives.csv ./data/offtopic/
COPY --chown=kiosk:kiosk models/classifier ./models/classifier
COPY --chown=kiosk:kiosk models/adapters ./models/adapters
COPY --chown=kiosk:kiosk models/embedder ./models/embedder
ENV PATH=/opt/venv/bin:$PATH \
    KIOSK_HOST=0.0.0.0 \
    PORT=8000 \
    KIOSK_DB_PATH=/data/kiosk.sqlite3 \
    KIOSK_CACHE_DIR=/data/cache \
    KIOSK_BASE_CACHE_DIR=/models/base \
    HF_HOME=/models/huggingface \
    PYTHONPATH=/models/site
USER 10001:10001
EXPOSE 8000
VOLUME ["/models", "/data"]
HEALTHCHECK --interval=15s --timeout=5s --start-period=180s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\", \"8000\")}/readyz', timeout=4)"]
# The same command that `make serve` and the end-to-end test run.
CMD ["python", "-m", "app"]
