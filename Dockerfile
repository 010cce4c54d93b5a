# ccrelay container image.
#
#   docker build -t ccrelay --build-arg VERSION=$(git describe --tags --always) .
#   docker run -d -p 127.0.0.1:3000:3000 \
#     -v "$PWD/config.toml:/app/config.toml:ro" -v ccrelay-data:/app/data ccrelay
#
# The SQLite driver is cgo, so the binary is built with a C compiler against
# glibc (golang on Debian bookworm) and runs on the same Debian release
# (bookworm-slim); a static or Alpine (musl) image would need a different build.
# The process runs as the unprivileged user ccrelay (uid 10001): the mounted
# config.toml must be readable by that uid (chown 10001 config.toml; keep it 0600).

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=none
ARG DATE=unknown
RUN CGO_ENABLED=1 go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT} -X main.date=${DATE}" \
      -o /out/ccrelay ./cmd/ccrelay \
 && /out/ccrelay version

FROM debian:bookworm-slim
# ca-certificates: TLS to the providers; curl: the health check.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin ccrelay \
 && mkdir -p /app/data \
 && chown ccrelay:ccrelay /app/data \
 && chmod 700 /app/data
COPY --from=build /out/ccrelay /usr/local/bin/ccrelay
COPY config.example.toml /app/config.example.toml
WORKDIR /app
# ./config.toml (/app/config.toml) is found by the normal config search. The
# environment overrides what the container needs whatever the file says:
# listen on port 3000 of every interface of the container (map it with -p),
# keep the database in the volume.
# A relay key is required for clients outside the container: without one the
# relay serves only loopback (protected mode) and answers others 403. Pass one
# with -e CCRELAY_API_KEYS=your-key (comma-separated for several), or mount a
# config with api_keys / [[keys]] (ccrelay config init writes one).
ENV CCRELAY_HOST=0.0.0.0 \
    CCRELAY_PORT=3000 \
    CCRELAY_DATABASE_PATH=/app/data/relay.db
USER ccrelay
VOLUME ["/app/data"]
EXPOSE 3000
# /health is never behind auth and holds no secrets.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD curl -fsS http://127.0.0.1:3000/health || exit 1
# SIGTERM (the default stop signal) drains in-flight requests and streams
# for up to server.shutdown_timeout_seconds (30 s): give `docker stop` -t 40.
ENTRYPOINT ["ccrelay"]
CMD ["serve"]
