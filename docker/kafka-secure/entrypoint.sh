#!/usr/bin/env bash
# Start the apache/kafka image as the `secure` profile's broker (docker-compose.yml).
#
# Why not the image's own entrypoint: it formats the KRaft storage itself and offers no way to add
# SCRAM credentials at format time, yet the admin login must exist before the broker starts (the
# StandardAuthorizer lets nobody else create it). So: read the admin password from its secret
# file, write the config with the JAAS lines, format with `--add-scram` (once: a formatted log dir
# is left alone), then run the broker. Every other login and all ACLs are created afterwards by
# `tickwise security apply` (the security-init service), from streams/live/security.py.
set -euo pipefail

KAFKA_HOME="${KAFKA_HOME:-/opt/kafka}"
template="${TICKWISE_KAFKA_TEMPLATE:-/opt/tickwise/server.properties}"
secret="${TICKWISE_ADMIN_FILE:-/run/secrets/tickwise_admin}"
workdir="${TICKWISE_KAFKA_WORKDIR:-/tmp/tickwise-kafka}"
: "${CLUSTER_ID:?CLUSTER_ID must be set}"

if [[ ! -r "$secret" ]]; then
    echo "kafka-secure: no admin secret at $secret; run 'tickwise security secrets' first" >&2
    exit 1
fi
# admin.json is {"admin": "<password>"}; passwords are URL-safe characters (nothing to escape in
# JAAS or in --add-scram), so a pattern reads it without a JSON parser in this image.
password="$(sed -n 's/.*"admin"[[:space:]]*:[[:space:]]*"\([A-Za-z0-9_-]*\)".*/\1/p' "$secret" | head -n 1)"
if [[ ${#password} -lt 16 || ${password,,} == *change-me* ]]; then
    echo "kafka-secure: $secret must hold {\"admin\": \"<16+ URL-safe characters>\"}" >&2
    exit 1
fi

umask 077
mkdir -p "$workdir"
config="$workdir/server.properties"
scram="org.apache.kafka.common.security.scram.ScramLoginModule required"
plain="org.apache.kafka.common.security.plain.PlainLoginModule required"
{
    cat "$template"
    echo
    echo "listener.name.internal.scram-sha-512.sasl.jaas.config=$scram username=\"admin\" password=\"$password\";"
    echo "listener.name.controller.plain.sasl.jaas.config=$plain username=\"admin\" password=\"$password\" user_admin=\"$password\";"
} >"$config"
# The healthcheck's login (kafka-broker-api-versions.sh --command-config).
{
    echo "security.protocol=SASL_PLAINTEXT"
    echo "sasl.mechanism=SCRAM-SHA-512"
    echo "sasl.jaas.config=$scram username=\"admin\" password=\"$password\";"
} >"$workdir/admin-client.properties"

"$KAFKA_HOME/bin/kafka-storage.sh" format --ignore-formatted --cluster-id "$CLUSTER_ID" \
    --config "$config" --add-scram "SCRAM-SHA-512=[name=admin,password=$password]"

exec "$KAFKA_HOME/bin/kafka-server-start.sh" "$config"
