# Serving image: onnxruntime + tokenizers + FastAPI, no torch, runs as a non-root user.
#   docker build -t switchboard-serve .
#   docker run -p 8000:8000 -v $PWD/.switchboard/runs/demo/bundle:/models/bundle:ro \
#     -v switchboard-data:/data switchboard-serve
#   docker exec <container> switchboard keys create --name my-platform --role service
# API keys are required in this image (SWITCHBOARD_AUTH_REQUIRED=true); they live in SQLite under /data,
# or in PostgreSQL with -e SWITCHBOARD_DATABASE_URL=postgresql+psycopg://user:pass@host/db.
# Training happens outside this image (`make demo` or `switchboard train`), which writes the bundle.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml README.md constraints.txt ./
COPY switchboard ./switchboard
COPY serving ./serving
COPY labeling ./labeling
COPY accountability ./accountability
COPY models ./models
COPY evaluation ./evaluation
COPY training ./training
# base dependencies only: the [train] extra (torch, transformers, MLflow) is not installed
RUN /opt/venv/bin/pip install --upgrade pip && /opt/venv/bin/pip install -c constraints.txt .

FROM python:3.11-slim AS serve
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    SWITCHBOARD_BUNDLE_PATH=/models/bundle \
    SWITCHBOARD_HOST=0.0.0.0 \
    SWITCHBOARD_PORT=8000 \
    SWITCHBOARD_HOME=/data \
    SWITCHBOARD_AUTH_REQUIRED=true
RUN useradd --create-home --uid 10001 switchboard && mkdir -p /data && chown switchboard /data
VOLUME /data
COPY --from=build /opt/venv /opt/venv
USER switchboard
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2).status == 200 else 1)"
CMD ["uvicorn", "serving.app:create_app", "--factory", "--host", "0.0.0.0", "--port", "8000"]
