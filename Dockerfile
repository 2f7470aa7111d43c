# The manager image for people who build with Docker (docker buildx build --platform
# linux/amd64,linux/arm64 --build-arg VERSION=$(cat VERSION) ...). `make image` builds the same
# image without a Docker daemon (internal/release); TestDockerfileMatchesBuilder keeps the two
# equal: same build flags, entrypoint, user, files and labels.
FROM --platform=$BUILDPLATFORM golang:1.26-bookworm AS build
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=devel
ARG COMMIT=unknown
ARG DATE=1970-01-01T00:00:00Z
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath -buildvcs=false -ldflags "-s -w -X github.com/palisade-fw/palisade/internal/version.Version=${VERSION} -X github.com/palisade-fw/palisade/internal/version.Commit=${COMMIT} -X github.com/palisade-fw/palisade/internal/version.Date=${DATE}" -o /manager ./cmd/manager
RUN mkdir -p /rootfs/tmp && chmod 1777 /rootfs/tmp

FROM scratch
ARG VERSION=devel
ARG COMMIT=unknown
ARG DATE=1970-01-01T00:00:00Z
COPY internal/release/rootfs/ /
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /rootfs/tmp /tmp
COPY --from=build /manager /manager
LABEL org.opencontainers.image.title="palisade-manager" \
      org.opencontainers.image.description="Palisade firewall manager for metal-stack seed and management clusters" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.created="${DATE}" \
      org.opencontainers.image.source="https://github.com/palisade-fw/palisade" \
      org.opencontainers.image.url="https://github.com/palisade-fw/palisade"
USER 65532:65532
WORKDIR /
ENTRYPOINT ["/manager"]
