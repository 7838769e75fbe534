# driftbridge container image: the `driftbridge` binary on a slim Debian, run as a non-root
# user. Also an Airbyte custom connector image (AIRBYTE_ENTRYPOINT, io.airbyte.* labels).
#
#   docker build -t driftbridge:0.1.0 .                                   # the CLI
#   docker build --target airbyte -t driftbridge/source-drift:0.1.0 .     # Airbyte connector
#   docker run --rm driftbridge:0.1.0 airbyte spec
#   docker run --rm -v "$PWD:/work" driftbridge:0.1.0 airbyte read --config /work/config.json --catalog /work/catalog.json
#
# docs/RUN-ELSEWHERE.md: adding it to Airbyte OSS, Meltano and Dagster.

# --- build: the release binary, with the lock file as committed ---
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p driftbridge --bin driftbridge \
    && install -m 0755 target/release/driftbridge /usr/local/bin/driftbridge

# --- runtime: CA certificates, a non-root user, the binary ---
FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --home-dir /home/driftbridge --uid 10001 driftbridge
COPY --from=build /usr/local/bin/driftbridge /usr/local/bin/driftbridge
USER driftbridge
WORKDIR /home/driftbridge
ENV DRIFTBRIDGE_DATA_DIR=/home/driftbridge/data
# Airbyte runs "$AIRBYTE_ENTRYPOINT spec|check|discover|read ..." in a custom connector image.
ENV AIRBYTE_ENTRYPOINT="driftbridge airbyte"
LABEL io.airbyte.name="driftbridge/source-drift" \
      io.airbyte.version="0.1.0" \
      org.opencontainers.image.title="driftbridge" \
      org.opencontainers.image.description="Move data between Drift and your data stores; Airbyte, Singer and Dagster Pipes modes" \
      org.opencontainers.image.licenses="Apache-2.0"
ENTRYPOINT ["driftbridge"]
CMD ["--help"]

# --- the Airbyte connector image: Airbyte's Docker launcher runs `IMAGE spec|check|...` ---
#   docker build --target airbyte -t driftbridge/source-drift:0.1.0 .
FROM runtime AS airbyte
ENTRYPOINT ["driftbridge", "airbyte"]
CMD ["spec"]

# --- the default image (`docker build .`): the whole CLI ---
FROM runtime
