# tuanbot in a container: multi-stage build, runs as an unprivileged user,
# keeps its SQLite file and backups in the /data volume.
#
# Not exercised in this project's CI (no container engine runs there); the
# tested way to run tuanbot as a service is `tuanbot service install`.
#
#   docker build -t tuanbot .
#   docker run -d --name tuanbot -v tuanbot-data:/data \
#     -e TUANBOT_TELEGRAM__TOKEN=… tuanbot
FROM rust:1.94-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked && strip target/release/tuanbot

FROM debian:bookworm-slim
# CA certificates for Telegram, a CJK font for charts, pg_dump for backups
# of a PostgreSQL database.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates fonts-wqy-microhei postgresql-client \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin tuanbot \
 && install -d -o tuanbot -g tuanbot /data
COPY --from=build /src/target/release/tuanbot /usr/local/bin/tuanbot
USER tuanbot
WORKDIR /data
VOLUME /data
ENV TUANBOT_DATABASE_URL=sqlite:///data/tuanbot.db \
    TUANBOT_BACKUP__DIR=/data/backups \
    TUANBOT_LOG=info \
    TUANBOT_LOG__FORMAT=json
ENTRYPOINT ["tuanbot"]
CMD ["run"]
