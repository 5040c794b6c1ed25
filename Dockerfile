# Aqueduct as one self-contained binary (bun build --compile) on a slim runtime image.
#   docker build -t aqueduct .
#   docker run -p 5000:5000 -v aqueduct-data:/data aqueduct
# The binary carries everything it runs: its migrations and, with no DATABASE_URL, its own
# PostgreSQL server, unpacked into /data/postgres on first start (the cluster is /data/pg); set
# DATABASE_URL to use your own server instead. It runs as the unprivileged user `aqueduct`.

FROM oven/bun:1.4.5-debian AS build
WORKDIR /src
COPY package.json bun.lock ./
COPY patches ./patches
RUN bun install --frozen-lockfile
COPY . .
RUN bun run build

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tzdata libsecp256k1-1 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --create-home --home-dir /home/aqueduct aqueduct \
 && mkdir /data && chown aqueduct /data
COPY --from=build /src/dist/aqueduct /app/aqueduct
# MIMALLOC_PURGE_HOLES: as `bun run start` sets it (package.json; README, "Memory allocator")
ENV DATA_DIR=/data \
    PORT=5000 \
    MIMALLOC_PURGE_HOLES=0
USER aqueduct
VOLUME /data
EXPOSE 5000
ENTRYPOINT ["/app/aqueduct"]
