#!/bin/sh
# salvage reference restic crane (crane API 1, docs/crane-interface.md).
#   RESTIC_REPOSITORY       default /salvage/target/<machine>: one repository per machine
#   RESTIC_PASSWORD_FILE    the password, from the crane's secrets (never put it in env)
#   RESTIC_CHECK_SUBSET     how much of the data verify reads back (restic check
#                           --read-data-subset; default 10%)
#   RESTIC_KEEP_LAST, RESTIC_KEEP_HOURLY, _DAILY, _WEEKLY, _MONTHLY, _YEARLY
#                           retention, once per tide after its backups (the retention action);
#                           a backup never prunes, so a restore's safety backup
#                           (SALVAGE_NO_RETENTION=1) never removes a snapshot
# Each snapshot holds /salvage/volume and /salvage/meta, with host = the machine and the
# tag volume=<volume>, so that one repository keeps every volume of a machine apart. A stream
# (SALVAGE_SOURCE=stdin, a database's dump) is one file, /<volume> (restic backup --stdin).
# The repository is created by the init action, which salvage runs once per tide before any
# backup: cranes backing up at once never race to create it. A backup then opens it once
# (its parent from SALVAGE_PREVIOUS_SNAPSHOT), checks and pruning stay out of it. Several
# machines can share one repository (RESTIC_REPOSITORY): each sees, keeps and forgets only
# its own snapshots.
set -eu

export RESTIC_REPOSITORY="${RESTIC_REPOSITORY:-/salvage/target/$SALVAGE_MACHINE_NAME}"
export RESTIC_CACHE_DIR="${RESTIC_CACHE_DIR:-/tmp/restic-cache}"
host="$SALVAGE_MACHINE_NAME"
tag="volume=${SALVAGE_VOLUME_NAME:-}"
filters="--host $host --tag $tag"
errors=$(mktemp)
code=0

say() { echo "restic crane: $*" >&2; }

if [ -z "${RESTIC_PASSWORD_FILE:-}${RESTIC_PASSWORD:-}" ]; then
    say "no password: give the crane secrets = { RESTIC_PASSWORD = \"/file\" }"
    exit 2
fi

missing() {  # the failure restic just had means: no repository there yet
    [ "$code" = 10 ] || grep -q 'Is there a repository at the following location' "$errors"
}

explain() {  # restic's failure in one line (restic prints Go stack traces on some errors)
    where="the repository at $RESTIC_REPOSITORY"
    if [ "$code" = 12 ] || grep -q 'wrong password or no key found' "$errors"; then
        say "wrong password for $where (the crane's secret RESTIC_PASSWORD)"
    elif grep -qi 'no space left on device' "$errors"; then
        say "the disk of $where is full (no space left on device)"
    else
        why=$(grep -v -e '^[[:space:]]' -e '^github\.com/' -e '^runtime\.' -e '^main\.' "$errors" \
            | sed 's/^Fatal: //' | tr '\n' ' ' | cut -c 1-400)
        say "restic $1 failed (exit $code) for $where: ${why% }"
    fi
}

locked() {  # the failure restic just had means: another restic holds a lock that excludes ours
    grep -q 'repository is already locked' "$errors"
}

run() {  # restic "$@"; on failure one line saying why and exit: 3 when there is no repository
    # Another host's prune on a shared repository locks it exclusively for a while: wait
    # for restic's own lock to go (RESTIC_LOCK_WAIT seconds), never remove it.
    waited=0
    while :; do
        code=0
        restic "$@" 2>"$errors" || code=$?
        if [ "$code" = 0 ] || ! locked || [ "$waited" -ge "${RESTIC_LOCK_WAIT:-900}" ]; then
            break
        fi
        [ "$waited" = 0 ] && say "the repository is locked by another restic: waiting for it"
        sleep 5
        waited=$((waited + 5))
    done
    if [ "$code" = 0 ]; then
        cat "$errors" >&2  # warnings, e.g. a file that changed while it was read
        return 0
    fi
    if missing; then
        say "no repository at $RESTIC_REPOSITORY"
        exit 3
    fi
    explain "$1"
    exit 1
}

exists() {  # 0: the repository is there; 1: there is none yet; anything else: say why, exit 1
    code=0
    restic cat config >/dev/null 2>"$errors" || code=$?
    [ "$code" = 0 ] && return 0
    missing && return 1
    explain "cat config"
    exit 1
}

manifest() {  # what a restore must give back exactly: types, sizes, modes, owners, checksums
    (cd "$1" && find . -exec stat -c '%n|%F|%s|%a|%u|%g' {} + \
        | awk -F'|' 'BEGIN { OFS = "|" } $2 == "directory" { $3 = "-" } { print }' | sort \
        && find . -type f -exec sha256sum {} + | sort)
}

snapshots() {  # this volume's snapshots, newest first, as JSON lines
    json=$(run snapshots --json $filters)
    echo "$json" | jq -c '(. // []) | sort_by(.time) | reverse | .[]'
}

resolve() {  # SALVAGE_SNAPSHOT (an id, or "latest") -> this volume's snapshot id, or exit 3
    want="${SALVAGE_SNAPSHOT:-latest}"
    all=$(snapshots)
    id=$(echo "$all" | jq -r --arg w "$want" 'select($w == "latest" or .short_id == $w
        or .id == $w) | .id' | head -n 1)
    if [ -z "$id" ]; then
        echo "no snapshot $want of $SALVAGE_VOLUME_NAME in $RESTIC_REPOSITORY" >&2
        exit 3
    fi
    echo "$id"
}

case "${SALVAGE_ACTION:-backup}" in
init)
    exists && exit 0
    # Hosts sharing a repository may race to create it, and restic init is not atomic (a
    # second config would replace the first). A local path is made under a name of its own
    # and renamed into place, which only one host can do; the others find it there.
    parent=$(dirname "$RESTIC_REPOSITORY")
    new=""
    if [ "${RESTIC_REPOSITORY#/}" != "$RESTIC_REPOSITORY" ] && mkdir -p "$parent" 2>/dev/null \
        && { [ ! -d "$RESTIC_REPOSITORY" ] \
            || [ "$(stat -c %d "$RESTIC_REPOSITORY")" = "$(stat -c %d "$parent")" ]; }; then
        new=$(mktemp -d "$parent/.$(basename "$RESTIC_REPOSITORY").init-XXXXXX" 2>/dev/null) \
            || new=""
    fi
    if [ -n "$new" ]; then
        trap 'rm -rf "$new"' EXIT
        code=0
        RESTIC_REPOSITORY="$new" restic init >/dev/null 2>"$errors" || code=$?
        [ "$code" = 0 ] || { explain init; exit 1; }
        if mv -T "$new" "$RESTIC_REPOSITORY" 2>/dev/null; then
            echo "created restic repository at $RESTIC_REPOSITORY"
            exit 0
        fi
        exists && { echo "another host created the repository meanwhile: using it"; exit 0; }
        say "cannot create a repository at $RESTIC_REPOSITORY: it is there, not a restic one"
        exit 1
    else  # remote, a mount point, a read-only parent: restic's own refusal of a second init
        code=0
        restic init 2>"$errors" || code=$?
        [ "$code" = 0 ] && exit 0
        failed=$code
        cp "$errors" "$errors.init"
        exists && { echo "another host created the repository meanwhile: using it"; exit 0; }
        code=$failed
        mv "$errors.init" "$errors"
        explain init
        exit 1
    fi
    ;;
volumes)  # the volumes this machine has snapshots of, as JSON lines, by name
    exists || exit 0
    run snapshots --json --host "$host" | jq -c '[(. // [])[] | (.tags // [])[]
        | select(startswith("volume=")) | .[7:]] | unique | .[] | {volume: .}'
    ;;
backup)
    when=$(date -u -d "@$SALVAGE_TIDE_TIMESTAMP" '+%Y-%m-%d %H:%M:%S')
    if [ "${SALVAGE_SOURCE:-}" = stdin ]; then  # a stream, straight into the repository
        progress=$(mktemp)
        run backup --json $filters --tag salvage --tag salvage-stream --time "$when" --stdin \
            --stdin-filename "$SALVAGE_VOLUME_NAME" > "$progress"
        # The input also ends when salvage dies mid-stream: keep it only when told it is whole.
        if [ ! -e /salvage/meta/stream-complete ]; then
            id=$(jq -r 'select(.message_type == "summary") | .snapshot_id' "$progress" | tail -n 1)
            [ -z "$id" ] || run forget $filters "$id" > /dev/null
            say "the stream ended before salvage said it was complete: not kept"
            exit 1
        fi
        jq -c 'select(.message_type == "summary") | {snapshot: .snapshot_id[:8],
            bytes_stored: (.data_added_packed // .data_added),
            bytes_read: .total_bytes_processed, files: 1}' "$progress" | tail -n 1 \
            > /salvage/meta/result.json
        jq -r '"snapshot \(.snapshot) saved: \(.bytes_read) bytes read,"
            + " \(.bytes_stored) bytes added"' /salvage/meta/result.json
        exit 0
    fi
    # The manifest (each path's type, size, mode, owner; each file's checksum) is saved with
    # the snapshot: `salvage verify --restore` compares a test restore with it.
    if [ "${RESTIC_MANIFEST:-1}" != 0 ]; then
        manifest /salvage/volume > /salvage/meta/manifest
    fi
    progress=$(mktemp)
    # The parent is this volume's own snapshot, or none (--force): restic 0.14 would
    # otherwise take any snapshot of the same host and paths, i.e. another volume's.
    # Opening the repository costs a key derivation and a lock, so a backup opens it once:
    # salvage names this volume's previous snapshot (SALVAGE_PREVIOUS_SNAPSHOT). Only
    # without it (a first backup) or when it is gone (forgotten) is the newest one looked up.
    attempt() {  # restic backup with these parent options; its exit status in $code
        waited=0  # another host's prune holds an exclusive lock: wait, as run() does
        while :; do
            code=0
            restic backup --json $filters --tag salvage --time "$when" "$@" \
                /salvage/volume /salvage/meta > "$progress" 2>"$errors" || code=$?
            if [ "$code" = 0 ] || ! locked || [ "$waited" -ge "${RESTIC_LOCK_WAIT:-900}" ]; then
                return 0
            fi
            [ "$waited" = 0 ] && say "the repository is locked by another restic: waiting for it"
            sleep 5
            waited=$((waited + 5))
        done
    }
    parent=$(printf '%s\n' "${SALVAGE_PREVIOUS_SNAPSHOT:-}" | grep -x '[0-9a-f]\{8,64\}' || true)
    if [ -n "$parent" ]; then
        attempt --parent "$parent"
        if [ "$code" != 0 ] && grep -q 'invalid id' "$errors"; then
            say "previous snapshot $parent is not in the repository: looking up the newest"
            parent=""
        fi
    fi
    if [ -z "$parent" ]; then
        all=$(snapshots)
        parent=$(echo "$all" | jq -r '.id' | head -n 1)
        attempt ${parent:+--parent "$parent"} ${parent:---force}
    fi
    if [ "$code" != 0 ]; then
        missing && { say "no repository at $RESTIC_REPOSITORY (the init action creates it)"; exit 1; }
        explain backup
        exit 1
    fi
    cat "$errors" >&2  # warnings, e.g. a file that changed while it was read
    # What this backup stored, for salvage to read back once the crane has exited: restic's
    # summary without /salvage/meta's own files (the metadata and manifest). What it
    # added to the repository: packed (compressed) since restic 0.16, before that not.
    summary=$(jq -c 'select(.message_type == "summary")' "$progress" | tail -n 1)
    metabytes=$(find /salvage/meta -type f -exec stat -c %s {} + | awk '{ s += $1 } END { print s }')
    metafiles=$(find /salvage/meta -type f | wc -l)
    echo "$summary" | jq -c --argjson mb "$metabytes" --argjson mf "$metafiles" '{
        snapshot: .snapshot_id[:8], bytes_stored: (.data_added_packed // .data_added),
        bytes_read: (.total_bytes_processed - $mb),
        files: (.total_files_processed - $mf)}' > /salvage/meta/result.json
    jq -r '"snapshot \(.snapshot) saved: \(.files) files, \(.bytes_read) bytes read,"
        + " \(.bytes_stored) bytes added"' /salvage/meta/result.json
    ;;
retention)
    keep=""
    for period in LAST HOURLY DAILY WEEKLY MONTHLY YEARLY; do
        value=$(eval echo "\${RESTIC_KEEP_$period:-}")
        [ -n "$value" ] && keep="$keep --keep-$(echo "$period" | tr A-Z a-z) $value"
    done
    tags=""
    for volume in ${SALVAGE_VOLUMES:-}; do tags="$tags --tag volume=$volume"; done
    if [ -z "$keep" ] || [ -z "$tags" ]; then exit 0; fi
    # One exclusive lock for the whole tide, after its backups; each volume kept apart.
    run forget --host "$host" $tags --group-by host,tags $keep --prune
    ;;
list)
    exists || exit 0  # no repository yet: no snapshots
    snapshots | jq -c '{id: .short_id, time: .time, size: null,
        consistent: ((.tags // []) | index("salvage-inconsistent") | not)}'
    ;;
mark)  # this run's snapshot is not consistent: tag it
    exists || { say "no repository at $RESTIC_REPOSITORY"; exit 3; }
    when=$(date -u -d "@$SALVAGE_TIDE_TIMESTAMP" '+%Y-%m-%dT%H:%M:%S')
    id=$(run snapshots --json $filters | jq -r --arg w "$when" '(. // [])
        | map(select(.time | startswith($w))) | .[0].id // empty')
    if [ -z "$id" ]; then
        echo "no snapshot of $SALVAGE_VOLUME_NAME at $when in $RESTIC_REPOSITORY" >&2
        exit 3
    fi
    run tag --add salvage-inconsistent "$id"
    ;;
verify)  # the repository's structure and a share of its data, and the snapshot is there
    exists || { say "no repository at $RESTIC_REPOSITORY"; exit 3; }
    id=$(resolve)
    run check --read-data-subset "${RESTIC_CHECK_SUBSET:-10%}"
    run ls "$id" > /dev/null
    stream=$(snapshots | jq -r --arg id "$id" 'select(.id == $id)
        | (.tags // []) | index("salvage-stream") // empty')
    if [ "${SALVAGE_VERIFY_RESTORE:-}" = 1 ] && [ -z "$stream" ]; then  # a scratch volume
        saved=$(mktemp -d)
        if ! restic dump "$id" /salvage/meta/manifest > "$saved/manifest" 2>/dev/null; then
            say "snapshot ${id%"${id#????????}"} has no manifest (RESTIC_MANIFEST=0, or an older crane)"
            exit 1
        fi
        run restore "$id" --target / --include /salvage/volume
        manifest /salvage/volume > "$saved/restored"
        if ! cmp -s "$saved/manifest" "$saved/restored"; then
            first=$(diff "$saved/manifest" "$saved/restored" | grep '^[-+][^-+]' | head -n 1)
            say "snapshot ${id%"${id#????????}"} restores differently from its manifest: $first"
            exit 1
        fi
        echo "restored ${id%"${id#????????}"} into a scratch volume: its manifest matches"
    fi
    echo "verified snapshot ${id%"${id#????????}"}"
    ;;
meta)
    run dump "$(resolve)" /salvage/meta/meta.json
    ;;
restore)
    id=$(resolve)
    if [ "${SALVAGE_TARGET:-}" = stdout ]; then  # a stream's snapshot, on standard output
        run dump "$id" "/$SALVAGE_VOLUME_NAME"
        exit 0
    fi
    # salvage hands over an empty scratch volume of its own, and copies it onto the
    # target only once this restore has succeeded.
    run restore "$id" --target / --include /salvage/volume
    echo "restored $id"
    ;;
*)
    say "action \"${SALVAGE_ACTION}\" is not supported"
    exit 64
    ;;
esac
