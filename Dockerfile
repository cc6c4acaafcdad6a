# momentd image: built on Debian 12 with the same packages the project is
# developed and tested against (librdkafka 2.0.2, yajl 2.1; libvalkey is
# vendored in deps/).
FROM debian:12-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
        gcc libc6-dev cmake ninja-build pkg-config librdkafka-dev libyajl-dev libmicrohttpd-dev libssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY cmake cmake
COPY deps deps
COPY include include
COPY src src
COPY config config
COPY tools tools
COPY bench bench
COPY web web
COPY docs/momentd.1 docs/momentd.1
COPY packaging packaging
# Prefix /usr at configure time: GNUInstallDirs then puts the configuration
# in /etc and the unit names /usr/bin/momentd.
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DMOMENTD_BUILD_TESTS=OFF -DCMAKE_INSTALL_PREFIX=/usr \
    && cmake --build /build --target momentd gen_events \
    && DESTDIR=/install cmake --install /build

FROM debian:12-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
        librdkafka1 libyajl2 libmicrohttpd12 libssl3 kcat \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --no-create-home momentd
COPY --from=build /install/ /
COPY --from=build /build/gen_events /usr/local/bin/gen_events
USER momentd
ENTRYPOINT ["/usr/bin/momentd"]
CMD ["run", "-c", "/etc/momentd/momentd.json"]
