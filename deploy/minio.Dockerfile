# MinIO's community edition is distributed as source: build the pinned version
# (the same one tools/bootstrap.sh installs) and ship only the binary.
FROM golang:1.24-bookworm AS build
ARG MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
RUN GOBIN=/out GOFLAGS=-buildvcs=false go install github.com/minio/minio@${MINIO_VERSION}

FROM debian:bookworm-slim
# The suite is pinned by the base image; exact package versions are not, since Debian
# replaces them with each point release and a pinned version then no longer installs.
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* && useradd --system --uid 10002 minio && mkdir /data && chown minio /data
COPY --from=build /out/minio /usr/local/bin/minio
USER 10002
EXPOSE 9000 9001
ENTRYPOINT ["minio", "server", "/data", "--address", ":9000", "--console-address", ":9001"]
