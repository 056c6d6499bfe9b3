# haraqa broker image: a static binary (and hrq) on busybox, whose wget runs
# the health check. Build: docker build -t haraqa --build-arg VERSION=v1.2.3 .
# Run:   docker run -d -p 4353:4353 -p 4354:4354 -v haraqa-data:/data haraqa
# See README "Running in production".
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/haraqa-broker ./cmd/broker \
 && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/hrq ./cmd/hrq \
 && mkdir -p /out/data

FROM busybox:1.37-musl
COPY --from=build /out/haraqa-broker /out/hrq /usr/local/bin/
COPY --from=build --chown=65532:65532 /out/data /data
# Not root: the broker needs no privilege; /data belongs to this user.
USER 65532:65532
# Listen on every interface of the container; the data in the volume.
ENV HARAQA_BROKER_ADDR=:4353 \
    HARAQA_BROKER_HTTP=:4354 \
    HARAQA_BROKER_VOLUMES=/data
VOLUME ["/data"]
# 4353: the haraqa protocol; 4354: /metrics, /healthz, /readyz, status page.
EXPOSE 4353 4354
# SIGTERM: answer requests in flight, sync, exit 0 (docker stop -t 45).
STOPSIGNAL SIGTERM
# /readyz is 503 until the volumes are open and enough of them are healthy.
# With -tls-cert the HTTP listener speaks HTTPS: change or drop this check.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:4354/readyz"]
ENTRYPOINT ["/usr/local/bin/haraqa-broker"]
