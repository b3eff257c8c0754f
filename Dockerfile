# Serving image: onnxruntime + tokenizers + FastAPI, no torch. A model bundle is mounted or copied in.
#   docker build -t switchboard-serve .
#   docker run -p 8000:8000 -v $PWD/.switchboard/runs/demo/bundle:/models/bundle:ro switchboard-serve
# Training happens outside this image (`make demo` or `switchboard train`), which writes the bundle.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml README.md ./
COPY switchboard ./switchboard
COPY serving ./serving
COPY models ./models
COPY evaluation ./evaluation
COPY training ./training
# base dependencies only: the [train] extra (torch, transformers, MLflow) is not installed
RUN /opt/venv/bin/pip install --upgrade pip && /opt/venv/bin/pip install .

FROM python:3.11-slim AS serve
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    SWITCHBOARD_BUNDLE_PATH=/models/bundle \
    SWITCHBOARD_HOST=0.0.0.0 \
    SWITCHBOARD_PORT=8000 \
    SWITCHBOARD_HOME=/tmp/switchboard
RUN useradd --create-home --uid 10001 switchboard
COPY --from=build /opt/venv /opt/venv
USER switchboard
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2).status == 200 else 1)"
CMD ["uvicorn", "serving.app:create_app", "--factory", "--host", "0.0.0.0", "--port", "8000"]
