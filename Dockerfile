# reprise-server in a container. Built from Debian 12's packages, as on a developer machine.
FROM debian:12 AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build pkg-config libboost1.74-dev libboost-context1.74-dev \
      libpq-dev libfmt-dev nlohmann-json3-dev libspdlog-dev libcli11-dev libssl-dev libjemalloc-dev libsimdjson-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DREPRISE_BUILD_TESTS=OFF \
    && ninja -C /build reprise-server

FROM debian:12-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
      libpq5 libfmt9 libspdlog1.10 libssl3 libjemalloc2 libsimdjson14 curl \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /build/history-service/reprise-server /usr/local/bin/reprise-server
USER nobody
EXPOSE 7233
HEALTHCHECK CMD curl -sf http://127.0.0.1:7233/healthz || exit 1
ENTRYPOINT ["reprise-server", "--listen-address", "0.0.0.0", "--port", "7233"]
