# One image for the five CloudBill services and loadgen; docker-compose.yml picks the
# binary per service with `command`.
#
#   docker compose build            (or: docker build -t cloudbill-services:local .)
#
# Stage 1 builds every product with the official Swift image, statically linking the
# Swift runtime; stage 2 is a slim Debian 12 with only the C libraries the binaries load.
#
# checkov (scripts/check-kubernetes), two findings skipped on purpose:
# checkov:skip=CKV_DOCKER_2: One image runs six programs on different ports (PORT, command), so a HEALTHCHECK here could not know which port to ask; docker-compose.yml defines one per service and Kubernetes uses its probes (deploy/kubernetes).
# checkov:skip=CKV_DOCKER_7: The base images come from ARG SWIFT_IMAGE and ARG RUNTIME_IMAGE, whose defaults carry fixed tags (swift:6.3-bookworm, debian:bookworm-slim); checkov does not resolve ARG defaults.

ARG SWIFT_IMAGE=swift:6.3-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${SWIFT_IMAGE} AS build
RUN export DEBIAN_FRONTEND=noninteractive \
    && apt-get -q update \
    && apt-get -q install -y --no-install-recommends libpq-dev libhiredis-dev libssl-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /build

# Resolve the dependencies in their own layer, so that a source change does not fetch them again.
COPY Package.swift ./
RUN swift package resolve

COPY Sources ./Sources
COPY Benchmarks ./Benchmarks
COPY Tests ./Tests
ARG PRODUCTS="Gateway AuthSvc BillingSvc PaymentSvc NotifySvc loadgen"
RUN mkdir /staging \
    && for product in ${PRODUCTS}; do \
         swift build -c release --static-swift-stdlib --product "$product" || exit 1; \
       done \
    && bin="$(swift build -c release --show-bin-path)" \
    && for product in ${PRODUCTS}; do cp "$bin/$product" /staging/; done \
    && find -L "$bin" -maxdepth 1 -name '*.resources' -exec cp -R {} /staging/ \;

FROM ${RUNTIME_IMAGE}
RUN export DEBIAN_FRONTEND=noninteractive \
    && apt-get -q update \
    && apt-get -q install -y --no-install-recommends libpq5 libssl3 libhiredis0.14 ca-certificates tzdata curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 1000 --user-group --home-dir /app cloudbill
WORKDIR /app
COPY --from=build --chown=cloudbill:cloudbill /staging /app
USER cloudbill:cloudbill
# Inside a container a service must listen on every interface to be reachable.
ENV PATH=/app:$PATH \
    CLOUDBILL_HOST=0.0.0.0
EXPOSE 8080 3001 3002 3003 3004
CMD ["Gateway"]
