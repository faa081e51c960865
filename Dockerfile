# syntax=docker/dockerfile:1
# linkplane's container image: a release build of the `linkplane` binary on a distroless,
# non-root runtime. Build from the repository root:
#
#   docker build -t registry.example.com/linkplane:0.1.0 .
#
# The migrations in migrations/ are compiled into the binary (sqlx::migrate!), so the image needs
# nothing but the binary. The build needs no database: the store's checked queries take their
# types from the committed .sqlx/ (SQLX_OFFLINE=true, set by .cargo/config.toml and here). The runtime image runs as UID/GID 65532 ("nonroot"), matching the Helm
# chart's securityContext, and works with a read-only root filesystem (it writes only to /tmp and
# to --git-cache-dir, which the chart mounts as an emptyDir).

ARG RUST_VERSION=1.95

# --- build -------------------------------------------------------------------------------------
# Debian 12 (bookworm), the same glibc as the runtime image below.
FROM rust:${RUST_VERSION}-bookworm AS build
# git2 links OpenSSL dynamically (libssl3 is in the runtime image) and builds libgit2 and libssh2
# from source; zlib is linked statically so the runtime needs nothing beyond glibc and libssl.
RUN apt-get update \
    && apt-get install -y --no-install-recommends pkg-config libssl-dev \
    && rm -rf /var/lib/apt/lists/*
ENV LIBZ_SYS_STATIC=1 SQLX_OFFLINE=true
WORKDIR /src
COPY . .
# Caches keep the registry and incremental artifacts between builds; the binary is copied out of
# the cached target directory because cache mounts are not part of the image.
# --no-default-features leaves out the `dev` feature (`linkplane dev`, `linkplane sim`): the image
# links neither the Kubernetes simulator (kubesim) nor the PostgreSQL launcher.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p linkplane-server --no-default-features --bin linkplane \
    && install -D -m 0755 target/release/linkplane /out/linkplane

# --- runtime -----------------------------------------------------------------------------------
# distroless cc: glibc, libgcc, libssl3, CA certificates, tzdata; no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/linkplane /usr/local/bin/linkplane
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/linkplane"]
# In a container the server must listen on all interfaces (the binary's default is 127.0.0.1).
ENV LINKPLANE_LISTEN=0.0.0.0:8080
CMD ["serve"]
