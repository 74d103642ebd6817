# One image recipe for the three services and the simulators: a shared
# base stage installs the pinned packages once, and each target only sets its
# entry point. Build one with `docker build --target storage .` (compose does).
FROM python:3.11-slim AS base
ENV PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY mediagen ./mediagen
COPY gateway ./gateway
COPY generator_service ./generator_service
COPY storage_service ./storage_service
COPY comfyui_sim ./comfyui_sim
COPY images_api_sim ./images_api_sim
COPY predictions_sim ./predictions_sim
COPY sim_scaffold ./sim_scaffold
RUN pip install --no-cache-dir -c constraints.txt . \
    && useradd --system --uid 10001 mediagen \
    && mkdir -p /var/lib/mediagen/generator && chown -R mediagen /var/lib/mediagen
USER 10001
ENV MEDIAGEN_GATEWAY_HOST=0.0.0.0 MEDIAGEN_GENERATOR_HOST=0.0.0.0 MEDIAGEN_STORAGE_HOST=0.0.0.0

FROM base AS storage
ENV MEDIAGEN_STORAGE_PORT=50053 MEDIAGEN_STORAGE_METRICS_PORT=9103 MEDIAGEN_STORAGE_METRICS_HOST=0.0.0.0
EXPOSE 50053 9103
ENTRYPOINT ["python", "-m", "storage_service"]

FROM base AS generator
ENV MEDIAGEN_GENERATOR_PORT=50052 MEDIAGEN_GENERATOR_METRICS_PORT=9102 MEDIAGEN_GENERATOR_METRICS_HOST=0.0.0.0
EXPOSE 50052 9102
ENTRYPOINT ["python", "-m", "generator_service"]

FROM base AS gateway
ENV MEDIAGEN_GATEWAY_PORT=50051 MEDIAGEN_GATEWAY_METRICS_PORT=9101 MEDIAGEN_GATEWAY_METRICS_HOST=0.0.0.0
EXPOSE 50051 9101
ENTRYPOINT ["python", "-m", "gateway"]

# The simulators make real media: their stage adds the imaging and audio/video packages that
# the service images do without.
FROM base AS simulators
USER 0
RUN pip install --no-cache-dir -c constraints.txt ".[sim]"
USER 10001

FROM simulators AS comfyui-sim
EXPOSE 8188
ENTRYPOINT ["python", "-m", "comfyui_sim", "--host", "0.0.0.0", "--port", "8188", "--data-dir", "/tmp/comfyui-sim"]

FROM simulators AS images-api-sim
EXPOSE 8190
ENTRYPOINT ["python", "-m", "images_api_sim", "--host", "0.0.0.0", "--port", "8190"]

FROM simulators AS predictions-sim
EXPOSE 8191
ENTRYPOINT ["python", "-m", "predictions_sim", "--host", "0.0.0.0", "--port", "8191"]
