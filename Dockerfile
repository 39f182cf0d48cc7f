# flotilla image: built and run on the same Debian release (bookworm), so the
# binary finds exactly the libpq, libgit2 and jansson it was linked against.
#
#   git clone --branch v1.5.0 REPO flotilla && docker build -t flotilla:v1.5.0 flotilla
#   docker run --rm flotilla:v1.5.0 --version
#   docker run --rm -e PGHOST=... flotilla:v1.5.0 -e prod migrate --rev v1.5.0 --json
#
# The image holds the repository's manifest, migration folders and .git at
# /srv/flotilla (the working directory), so `--rev TAG` reads exactly the tagged
# files through libgit2. Build it from a clone with .git (a tag's shallow clone
# is enough), not from a git worktree or an archive: the build stops otherwise.
# ci/with-secret-files turns Secret Manager secrets mounted as files into the
# variables the manifest names (ci/cloudrun, ci/kubernetes).

FROM debian:bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential pkg-config libpq-dev \
      libgit2-dev libjansson-dev zlib1g-dev libpg-query-dev ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN if [ ! -d .git ]; then \
      echo "Dockerfile: no .git directory in the build context (a git worktree or an archive?);" \
           "build from a clone so --rev works" >&2; exit 1; \
    fi
RUN make flotilla && make install PREFIX=/usr/local DESTDIR=/stage

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq5 libgit2-1.5 libjansson4 zlib1g ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /stage/usr/local/ /usr/local/
COPY ci/with-secret-files /usr/local/bin/with-secret-files
# libgit2 refuses a repository its user does not own: the files belong to flotilla
RUN groupadd --system --gid 10001 flotilla \
 && useradd --system --uid 10001 --gid 10001 --home-dir /srv/flotilla --shell /usr/sbin/nologin flotilla
WORKDIR /srv/flotilla
COPY --from=build --chown=10001:10001 /src/.git ./.git
COPY --from=build --chown=10001:10001 /src/manifests ./manifests
COPY --from=build --chown=10001:10001 /src/services ./services
USER 10001:10001
RUN flotilla --version && flotilla -m manifests/pcc.toml manifest check
ENTRYPOINT ["flotilla"]
CMD ["--help"]
