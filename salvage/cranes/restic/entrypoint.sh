#!/bin/sh
# salvage reference restic crane (crane API 1, docs/crane-interface.md).
#   RESTIC_REPOSITORY       default /salvage/target/<machine>: one repository per machine
#   RESTIC_PASSWORD_FILE    the password, from the crane's secrets (never put it in env)
#   RESTIC_KEEP_LAST, RESTIC_KEEP_HOURLY, _DAILY, _WEEKLY, _MONTHLY, _YEARLY
#                           retention after each backup (restic forget --keep-* --prune),
#                           never when salvage sets SALVAGE_NO_RETENTION=1 (a safety backup)
# Each snapshot holds /salvage/volume and /salvage/meta, with host = the machine and the
# tag volume=<volume>, so that one repository keeps every volume of a machine apart.
set -eu

export RESTIC_REPOSITORY="${RESTIC_REPOSITORY:-/salvage/target/$SALVAGE_MACHINE_NAME}"
export RESTIC_CACHE_DIR="${RESTIC_CACHE_DIR:-/tmp/restic-cache}"
host="$SALVAGE_MACHINE_NAME"
tag="volume=$SALVAGE_VOLUME_NAME"
filters="--host $host --tag $tag"

if [ -z "${RESTIC_PASSWORD_FILE:-}${RESTIC_PASSWORD:-}" ]; then
    echo "restic crane: no password: give the crane secrets = { RESTIC_PASSWORD = \"/file\" }" >&2
    exit 2
fi

snapshots() {  # newest first, as JSON lines
    restic snapshots --json $filters | jq -c '(. // []) | sort_by(.time) | reverse | .[]
        | {id: .short_id, time: .time, size: null,
           consistent: ((.tags // []) | index("salvage-inconsistent") | not)}'
}

resolve() {  # SALVAGE_SNAPSHOT (an id, or "latest") -> this volume's snapshot id, or exit 3
    want="${SALVAGE_SNAPSHOT:-latest}"
    id=$(restic snapshots --json $filters | jq -r --arg w "$want" '(. // []) | sort_by(.time) | reverse
        | map(select($w == "latest" or .short_id == $w or .id == $w)) | .[0].id // empty')
    if [ -z "$id" ]; then
        echo "no snapshot $want of $SALVAGE_VOLUME_NAME in $RESTIC_REPOSITORY" >&2
        exit 3
    fi
    echo "$id"
}

case "${SALVAGE_ACTION:-backup}" in
backup)
    restic cat config >/dev/null 2>&1 || restic init
    when=$(date -u -d "@$SALVAGE_TIDE_TIMESTAMP" '+%Y-%m-%d %H:%M:%S')
    restic backup $filters --tag salvage --time "$when" /salvage/volume /salvage/meta
    keep=""
    for period in LAST HOURLY DAILY WEEKLY MONTHLY YEARLY; do
        value=$(eval echo "\${RESTIC_KEEP_$period:-}")
        [ -n "$value" ] && keep="$keep --keep-$(echo "$period" | tr A-Z a-z) $value"
    done
    if [ -n "$keep" ] && [ "${SALVAGE_NO_RETENTION:-}" != 1 ]; then
        restic forget $filters $keep --prune
    fi
    ;;
list)
    if restic cat config >/dev/null 2>&1; then snapshots; fi
    ;;
mark)  # this run's snapshot is not consistent: tag it
    restic cat config >/dev/null 2>&1 || { echo "no repository at $RESTIC_REPOSITORY" >&2; exit 3; }
    when=$(date -u -d "@$SALVAGE_TIDE_TIMESTAMP" '+%Y-%m-%dT%H:%M:%S')
    id=$(restic snapshots --json $filters | jq -r --arg w "$when" '(. // [])
        | map(select(.time | startswith($w))) | .[0].id // empty')
    if [ -z "$id" ]; then
        echo "no snapshot of $SALVAGE_VOLUME_NAME at $when in $RESTIC_REPOSITORY" >&2
        exit 3
    fi
    restic tag --add salvage-inconsistent "$id"
    ;;
meta)
    restic cat config >/dev/null 2>&1 || { echo "no repository at $RESTIC_REPOSITORY" >&2; exit 3; }
    restic dump "$(resolve)" /salvage/meta/meta.json
    ;;
restore)
    restic cat config >/dev/null 2>&1 || { echo "no repository at $RESTIC_REPOSITORY" >&2; exit 3; }
    id=$(resolve)
    # salvage hands over an empty scratch volume of its own, and copies it onto the
    # target only once this restore has succeeded.
    restic restore "$id" --target / --include /salvage/volume
    echo "restored $id"
    ;;
*)
    echo "restic crane: action \"${SALVAGE_ACTION}\" is not supported" >&2
    exit 64
    ;;
esac
