#!/bin/sh
# salvage reference tar crane (crane API 1, docs/crane-interface.md).
#   TAR_TARGET  where archives go (default /salvage/target; mount it from the crane config)
#   TAR_KEEP    keep only the newest N archives of each volume (default: keep all);
#               never applied when salvage sets SALVAGE_NO_RETENTION=1 (a safety backup)
# Layout: $TAR_TARGET/<machine>/<volume>/<snapshot>.tar.gz, with <snapshot>.meta.json beside
# it; <snapshot> is the tide's timestamp, e.g. 20261126T030000Z. A stream (SALVAGE_SOURCE=stdin,
# a database's dump) is stored gzipped as <snapshot>.dump.gz instead.
set -eu

target="${TAR_TARGET:-/salvage/target}"
dir="$target/$SALVAGE_MACHINE_NAME/$SALVAGE_VOLUME_NAME"

snapshots() {  # newest first
    [ -d "$dir" ] || return 0
    ls -1 "$dir" | grep -E '^[^.].*\.(tar|dump)\.gz$' | sed -E 's/\.(tar|dump)\.gz$//' | sort -r
}

archive() {  # the file of snapshot $1: a volume's tar.gz or a stream's dump.gz
    if [ -f "$dir/$1.dump.gz" ]; then echo "$dir/$1.dump.gz"; else echo "$dir/$1.tar.gz"; fi
}

bytes_of() {  # stat: busybox's wc -c reads the whole file to count its bytes
    stat -c %s "$1" 2>/dev/null || wc -c < "$1"
}

manifest() {  # what a restore must give back exactly (not times: busybox tar skips some)
    (cd "$1" && find . -exec stat -c '%n|%F|%s|%a|%u|%g' {} + \
        | awk -F'|' 'BEGIN { OFS = "|" } $2 == "directory" { $3 = "-" } { print }' | sort \
        && find . -type f -exec sha256sum {} + | sort)
}

resolve() {  # SALVAGE_SNAPSHOT (an id, or "latest") -> an existing id, or exit 3
    want="${SALVAGE_SNAPSHOT:-latest}"
    [ "$want" = latest ] && want=$(snapshots | head -n 1)
    if [ -z "$want" ] || [ ! -f "$(archive "$want")" ]; then
        echo "no snapshot ${SALVAGE_SNAPSHOT:-latest} of $SALVAGE_VOLUME_NAME in $dir" >&2
        exit 3
    fi
    echo "$want"
}

retention() {
    if [ -n "${TAR_KEEP:-}" ] && [ "${SALVAGE_NO_RETENTION:-}" != 1 ]; then
        snapshots | tail -n "+$((TAR_KEEP + 1))" | while read -r old; do
            rm -f "$dir/$old.tar.gz" "$dir/$old.dump.gz" "$dir/$old.meta.json" \
                "$dir/$old.result.json"
            echo "removed $old (TAR_KEEP=$TAR_KEEP)"
        done
    fi
}

case "${SALVAGE_ACTION:-backup}" in
backup)
    stamp=$(date -u -d "@$SALVAGE_TIDE_TIMESTAMP" +%Y%m%dT%H%M%SZ)
    mkdir -p "$dir"
    # A crane killed mid-backup (salvage killed, a timeout, an engine restart) leaves its
    # hidden partial files behind: this volume's next backup removes them.
    find "$dir" -maxdepth 1 -name '.*.partial' -exec rm -f {} + -exec echo "removed stale" {} +
    if [ "${SALVAGE_SOURCE:-}" = stdin ]; then  # a stream: one file, never on disk unzipped
        partial="$dir/.$stamp.dump.gz.partial"
        trap 'rm -f "$partial" /tmp/count' EXIT
        mkfifo /tmp/count
        wc -c < /tmp/count > /tmp/read &
        tee /tmp/count | gzip -c > "$partial"
        wait
        cp /salvage/meta/meta.json "$dir/$stamp.meta.json"
        mv "$partial" "$dir/$stamp.dump.gz"
        trap - EXIT
        stored=$(bytes_of "$dir/$stamp.dump.gz")
        echo "wrote $dir/$stamp.dump.gz ($stored bytes)"
        printf '{"snapshot": "%s", "bytes_stored": %s, "bytes_read": %s, "files": 1}\n' \
            "$stamp" "$stored" "$(($(cat /tmp/read)))" > /salvage/meta/result.json
        cp /salvage/meta/result.json "$dir/$stamp.result.json"
        retention
        exit 0
    fi
    partial="$dir/.$stamp.tar.gz.partial"
    trap 'rm -f "$partial"' EXIT
    # The manifest (each path's type, size, mode, owner; each file's checksum) travels in
    # the archive: `salvage verify --restore` compares a test restore with it.
    if [ "${TAR_MANIFEST:-1}" != 0 ]; then
        manifest /salvage/volume > /salvage/meta/manifest
    fi
    # Numeric owners: the uids in the volume, not the names this image happens to know.
    # The volume and its metadata travel together: restore needs both.
    tar -C /salvage --numeric-owner -czf "$partial" volume meta
    cp /salvage/meta/meta.json "$dir/$stamp.meta.json"
    mv "$partial" "$dir/$stamp.tar.gz"
    trap - EXIT
    stored=$(bytes_of "$dir/$stamp.tar.gz")
    echo "wrote $dir/$stamp.tar.gz ($stored bytes)"
    # What this backup stored, for salvage to read back once the crane has exited.
    read=$(find /salvage/volume -type f -exec stat -c %s {} + \
        | awk '{ s += $1 } END { printf "%.0f", s }')
    files=$(find /salvage/volume -type f | wc -l)
    printf '{"snapshot": "%s", "bytes_stored": %s, "bytes_read": %s, "files": %s}\n' \
        "$stamp" "$stored" "$read" "$((files))" > /salvage/meta/result.json
    cp /salvage/meta/result.json "$dir/$stamp.result.json"  # what verify compares with
    retention
    ;;
list)
    snapshots | while read -r id; do
        size=$(bytes_of "$(archive "$id")")
        consistent=true
        grep -q '"inconsistent"' "$dir/$id.meta.json" 2>/dev/null && consistent=false
        printf '{"id": "%s", "time": "%s", "size": %s, "consistent": %s}\n' \
            "$id" "$id" "$size" "$consistent"
    done
    ;;
mark)  # this run's snapshot is not consistent: say so in its metadata, with SALVAGE_MARK
    stamp=$(date -u -d "@$SALVAGE_TIDE_TIMESTAMP" +%Y%m%dT%H%M%SZ)
    meta="$dir/$stamp.meta.json"
    if [ ! -f "$meta" ]; then
        echo "no snapshot $stamp of $SALVAGE_VOLUME_NAME in $dir" >&2
        exit 3
    fi
    grep -q '"inconsistent"' "$meta" && exit 0
    why=$(printf '%s' "${SALVAGE_MARK:-not consistent}" | tr -d '\000-\037' | sed 's/[\\"]/\\&/g')
    body=$(cat "$meta")
    printf '%s,\n  "inconsistent": "%s"\n}\n' "${body%\}}" "$why" > "$dir/.$stamp.meta.json.partial"
    mv "$dir/.$stamp.meta.json.partial" "$meta"
    echo "marked $stamp not consistent"
    ;;
meta)
    id=$(resolve)
    cat "$dir/$id.meta.json"
    ;;
verify)  # the snapshot's archive is intact, and lists as many files as its backup saved
    id=$(resolve)
    archive=$(archive "$id")
    bad() { echo "archive $archive is damaged: $*" >&2; exit 1; }
    gzip -t "$archive" 2>/dev/null || bad "gzip -t fails (a corrupt or truncated archive)"
    if [ "${archive%.dump.gz}" != "$archive" ]; then  # a stream: intact, and as written
        stored=$(sed -n 's/.*"bytes_stored": *\([0-9]*\).*/\1/p' "$dir/$id.result.json" 2>/dev/null)
        [ -z "$stored" ] || [ "$(bytes_of "$archive")" = "$stored" ] \
            || bad "it is $(bytes_of "$archive") bytes, its backup wrote $stored"
        # --restore: a dump is replayed into its database, never into a volume.
        echo "verified $id (a dump: its archive only)"
        exit 0
    fi
    listing=$(mktemp)
    tar -tvzf "$archive" > "$listing" 2>/dev/null || bad "tar cannot list it"
    grep -q ' meta/meta.json$' "$listing" || bad "it holds no meta/meta.json"
    result="$dir/$id.result.json"
    if [ -f "$result" ]; then  # written by the backup (older archives have none)
        files=$(sed -n 's/.*"files": *\([0-9]*\).*/\1/p' "$result")
        stored=$(sed -n 's/.*"bytes_stored": *\([0-9]*\).*/\1/p' "$result")
        # Regular files and hard links under volume/ (GNU and busybox: the name is field 6).
        listed=$(awk '$1 ~ /^[-h]/ && index($6, "volume/") == 1' "$listing" | wc -l)
        listed=$((listed))
        [ -z "$files" ] || [ "$listed" = "$files" ] \
            || bad "it lists $listed files, its backup saved $files"
        [ -z "$stored" ] || [ "$(bytes_of "$archive")" = "$stored" ] \
            || bad "it is $(bytes_of "$archive") bytes, its backup wrote $stored"
    fi
    if [ "${SALVAGE_VERIFY_RESTORE:-}" = 1 ]; then  # a scratch volume at /salvage/volume
        saved=$(mktemp -d)
        tar -C "$saved" -xzf "$archive" meta/manifest 2>/dev/null \
            || bad "its backup recorded no manifest (TAR_MANIFEST=0, or an older crane)"
        tar -C /salvage --numeric-owner -xzf "$archive" volume 2>/dev/null \
            || bad "it cannot be restored"
        manifest /salvage/volume > "$saved/restored"
        if ! cmp -s "$saved/meta/manifest" "$saved/restored"; then
            first=$(diff "$saved/meta/manifest" "$saved/restored" | grep '^[-+][^-+]' | head -n 1)
            echo "snapshot $id restores differently from its manifest: $first" >&2
            exit 1
        fi
        echo "restored $id into a scratch volume: $(($(wc -l < "$saved/restored"))) lines of its manifest match"
    fi
    echo "verified $id: $(($(wc -l < "$listing"))) entries"
    ;;
restore)
    id=$(resolve)
    if [ "${SALVAGE_TARGET:-}" = stdout ]; then  # a stream's snapshot, on standard output
        gzip -dc "$(archive "$id")"
        exit 0
    fi
    # Onto the volume mounted at /salvage/volume: its root directory too gets the saved
    # owner and mode (a database refuses a data directory with the wrong ones).
    # salvage hands over an empty scratch volume of its own, and copies it onto the
    # target only once this restore has succeeded.
    tar -C /salvage --numeric-owner -xzf "$dir/$id.tar.gz" volume
    echo "restored $id into $SALVAGE_VOLUME_NAME's target"
    ;;
*)
    echo "tar crane: action \"${SALVAGE_ACTION}\" is not supported" >&2
    exit 64
    ;;
esac
