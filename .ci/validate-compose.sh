#!/usr/bin/env bash
# Validate docker-compose.yml with a real Compose implementation, no Docker engine needed.
#
# `config` parses the file, checks it against Compose's schema, resolves anchors and merges, and
# checks references between services (depends_on), all offline. Prefers the Docker CLI's compose
# plugin (v2); otherwise Debian's docker-compose 1.29, which .ci/provision installs when missing.
# Usage: .ci/validate-compose.sh [compose-file]   (default: docker-compose.yml at the repo root)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
file="${1:-$repo_root/docker-compose.yml}"
if [[ ! -f "$file" ]]; then
    echo "validate-compose: no such file: $file" >&2
    exit 2
fi

bash "$repo_root/.ci/provision" compose
if docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
else
    compose=(docker-compose)
fi

# The services build from the repo root; make sure what they build from is there.
if grep -Eq '^[[:space:]]+build:[[:space:]]*\.[[:space:]]*$' "$file" \
    && [[ ! -f "$(dirname "$file")/Dockerfile" ]]; then
    echo "validate-compose: $file builds from $(dirname "$file") but it has no Dockerfile" >&2
    exit 1
fi

echo "validate-compose: $("${compose[@]}" version --short 2>/dev/null || echo '?') on $file"
if ! "${compose[@]}" -f "$file" config -q; then
    echo "validate-compose: $file is NOT valid" >&2
    exit 1
fi
# Services in a profile: Compose v2's `config` leaves them out unless their profile is named.
for profile in $("${compose[@]}" -f "$file" config --profiles); do
    if ! "${compose[@]}" -f "$file" --profile "$profile" config -q; then
        echo "validate-compose: $file is NOT valid with profile $profile" >&2
        exit 1
    fi
done
echo "validate-compose: $file is valid"
