# Dromos container image: one static binary in an otherwise empty image.
#
#   docker build -t dromos .
#   docker run --rm dromos version
#
# The final image is FROM scratch: no shell, no package manager, no libc;
# it runs as uid/gid 65532 ("dromos") and works with a read-only root file
# system (everything is in PostgreSQL). The root filesystem is laid out by
# deploy/image/build-rootfs.sh, the script CI runs too (internal/e2e/image)
# to start the binary the way this image does. There is no HEALTHCHECK: an
# orchestrator probes GET /health (process up, broker and gateway) and
# GET /ready (broker: the database answers, else 503) itself.
#
# Build arguments: VERSION (printed by `dromos version`), GO_IMAGE.
ARG GO_IMAGE=golang:1.26.8-bookworm

FROM ${GO_IMAGE} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN sh deploy/image/build-rootfs.sh /rootfs "$VERSION"

FROM scratch
COPY --from=build /rootfs/ /
COPY --from=build --chown=65532:65532 /rootfs/data /data
USER 65532:65532
WORKDIR /data
# Broker 8080; gateway HTTP 8090 and gRPC 9090 (PORT / PORT_GRPC override).
EXPOSE 8080 8090 9090
ENTRYPOINT ["/usr/local/bin/dromos"]
CMD ["broker"]
