# mmsent_serve in a container: CPU PyTorch, a non-root user, the model directory mounted at /model.
#
#   docker build -t mmsent .
#   docker run --rm -p 8000:8000 -v "$PWD/models/end_to_end_multimodal_best:/model:ro" mmsent
#   docker run --rm -p 8000:8000 -v "$PWD/export:/model:ro" mmsent --backend onnxruntime --workers 2
#   docker run --rm -p 8000:8000 -e MMSENT_API_KEY="$(cat api_key.txt)" -v "$PWD/models/end_to_end_multimodal_best:/model:ro" mmsent
#
# Reachable from other machines, it needs an API key (MMSENT_API_KEY, or --api_key) and a TLS-terminating proxy in
# front (the deploy how-to shows one with Caddy); without a key, mmsent_serve warns at start. `docker stop` sends
# SIGTERM: the server drains for --shutdown_timeout seconds (default 10) and exits.
#
# Options after the image name are mmsent_serve's (see `mmsent_serve --help`); --model and --host are set here.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1

# libsndfile reads WAV/FLAC/OGG for soundfile; PyAV's wheel brings its own FFmpeg.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libsndfile1=1.2.* \
    && rm -rf /var/lib/apt/lists/*

# The CPU builds of torch and torchaudio (the default wheels on PyPI carry CUDA, several GB).
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch>=2.4,<3" "torchaudio>=2.4,<3"

WORKDIR /opt/mmsent
COPY settings.ini setup.py pyproject.toml MANIFEST.in LICENSE README.md ./
COPY mmsent ./mmsent
# the package from this folder; its dependencies at the versions settings.ini allows
# hadolint ignore=DL3013
RUN pip install ".[serve,onnx]" \
    && groupadd --gid 10001 mmsent \
    && useradd --create-home --uid 10001 --gid 10001 mmsent
USER 10001:10001
WORKDIR /home/mmsent

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status != 200)"]
ENTRYPOINT ["mmsent_serve", "--model", "/model", "--host", "0.0.0.0", "--port", "8000"]
