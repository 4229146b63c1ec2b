#!/bin/sh
# salvage reference tar crane (crane API 1, docs/crane-interface.md).
#   TAR_TARGET    where archives go (default /salvage/target; mount it from the crane config)
#   TAR_COMPRESS  zstd, gzip or none (default: zstd when this image has it, else gzip)
#   TAR_KEEP      keep only the newest N archives of each volume (default: keep all), once
#                 per tide after its backups (the retention action): a backup never removes
#                 one, so a restore's safety backup (SALVAGE_NO_RETENTION=1) never does
# Layout: $TAR_TARGET/<machine>/<volume>/<snapshot>.tar.zst (.tar.gz, .tar), with
# <snapshot>.meta.json beside it; <snapshot> is the tide's timestamp, e.g. 20261126T030000Z.
# Every action reads all three formats, whatever TAR_COMPRESS says now. A stream
# (SALVAGE_SOURCE=stdin, a database's dump) is stored gzipped as <snapshot>.dump.gz instead.
set -eu

target="${TAR_TARGET:-/salvage/target}"
dir="$target/$SALVAGE_MACHINE_NAME/${SALVAGE_VOLUME_NAME:-}"

snapshots() {  # newest first
    [ -d "$dir" ] || return 0
    ls -1 "$dir" | grep -v '^\.' \
        | sed -n -e 's/\.tar\.zst$//p' -e 's/\.tar\.gz$//p' -e 's/\.tar$//p' -e 's/\.dump\.gz$//p' \
        | sort -ru
}

archive_of() {  # a snapshot id -> its archive, whichever its format (none: fails)
    for suffix in tar.zst tar.gz tar dump.gz; do
        [ -f "$dir/$1.$suffix" ] && echo "$dir/$1.$suffix" && return 0
    done
    return 1
}

tar_read() {  # tar_read ARCHIVE "TAR-OPTIONS" [MEMBER...]: tar reads ARCHIVE, any format
    archive_=$1 options_=$2
    shift 2
    case "$archive_" in
    *.tar.zst)
        if ! command -v zstd >/dev/null; then
            echo "$archive_ is zstd-compressed and this crane image has no zstd" >&2
            return 1
        fi
        # zstd's own exit status too: a damaged frame must not pass for a short archive.
        status_=$(mktemp)
        { zstd -dcq "$archive_"; echo $? > "$status_"; } | tar $options_ -f - "$@" || return 1
        [ "$(cat "$status_")" = 0 ]
        ;;
    *.tar.gz) tar $options_ -z -f "$archive_" "$@" ;;
    *) tar $options_ -f "$archive_" "$@" ;;
    esac
}

compression() {  # TAR_COMPRESS, or the default: zstd when this image has it, else gzip
    want="${TAR_COMPRESS:-}"
    if [ -z "$want" ]; then
        command -v zstd >/dev/null && want=zstd || want=gzip
    fi
    case "$want" in
    zstd)
        if ! command -v zstd >/dev/null; then
            echo "TAR_COMPRESS=zstd, but this crane image has no zstd: gzip instead" >&2
            want=gzip
        fi
        ;;
    gzip | none) ;;
    *)
        echo "TAR_COMPRESS=\"$want\" is not one of zstd, gzip, none" >&2
        exit 2
        ;;
    esac
    echo "$want"
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
    if [ -z "$want" ] || ! archive_of "$want" >/dev/null; then
        echo "no snapshot ${SALVAGE_SNAPSHOT:-latest} of $SALVAGE_VOLUME_NAME in $dir" >&2
        exit 3
    fi
    echo "$want"
}

case "${SALVAGE_ACTION:-backup}" in
backup)
    stamp=$(date -u -d "@$SALVAGE_TIDE_TIMESTAMP" +%Y%m%dT%H%M%SZ)
    compress=$(compression)
    suffix=$(case "$compress" in zstd) echo tar.zst ;; gzip) echo tar.gz ;; *) echo tar ;; esac)
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
        # The input also ends when salvage dies mid-stream: keep it only when told it is whole.
        if [ ! -e /salvage/meta/stream-complete ]; then
            echo "the stream ended before salvage said it was complete: not kept" >&2
            exit 1
        fi
        cp /salvage/meta/meta.json "$dir/$stamp.meta.json"
        mv "$partial" "$dir/$stamp.dump.gz"
        trap - EXIT
        stored=$(bytes_of "$dir/$stamp.dump.gz")
        echo "wrote $dir/$stamp.dump.gz ($stored bytes)"
        printf '{"snapshot": "%s", "bytes_stored": %s, "bytes_read": %s, "files": 1}\n' \
            "$stamp" "$stored" "$(($(cat /tmp/read)))" > /salvage/meta/result.json
        cp /salvage/meta/result.json "$dir/$stamp.result.json"
        exit 0
    fi
    partial="$dir/.$stamp.$suffix.partial"
    trap 'rm -f "$partial"' EXIT
    # The manifest (each path's type, size, mode, owner; each file's checksum) travels in
    # the archive: `salvage verify --restore` compares a test restore with it.
    if [ "${TAR_MANIFEST:-1}" != 0 ]; then
        manifest /salvage/volume > /salvage/meta/manifest
    fi
    # Numeric owners: the uids in the volume, not the names this image happens to know.
    # The volume and its metadata travel together: restore needs both.
    case "$compress" in
    zstd)  # tar's exit status too: a pipeline's is only zstd's
        status=$(mktemp)
        { tar -C /salvage --numeric-owner -cf - volume meta; echo $? > "$status"; } \
            | zstd -q -T0 > "$partial"
        [ "$(cat "$status")" = 0 ] || exit 1
        ;;
    gzip) tar -C /salvage --numeric-owner -czf "$partial" volume meta ;;
    none) tar -C /salvage --numeric-owner -cf "$partial" volume meta ;;
    esac
    cp /salvage/meta/meta.json "$dir/$stamp.meta.json"
    mv "$partial" "$dir/$stamp.$suffix"
    trap - EXIT
    stored=$(bytes_of "$dir/$stamp.$suffix")
    echo "wrote $dir/$stamp.$suffix ($stored bytes)"
    # What this backup stored, for salvage to read back once the crane has exited.
    read=$(find /salvage/volume -type f -exec stat -c %s {} + \
        | awk '{ s += $1 } END { printf "%.0f", s }')
    files=$(find /salvage/volume -type f | wc -l)
    printf '{"snapshot": "%s", "bytes_stored": %s, "bytes_read": %s, "files": %s}\n' \
        "$stamp" "$stored" "$read" "$((files))" > /salvage/meta/result.json
    cp /salvage/meta/result.json "$dir/$stamp.result.json"  # what verify compares with
    ;;
retention)  # once per tide, after its backups: the newest TAR_KEEP of each volume it saved
    [ -n "${TAR_KEEP:-}" ] || exit 0
    for volume in ${SALVAGE_VOLUMES:-}; do
        dir="$target/$SALVAGE_MACHINE_NAME/$volume"
        snapshots | tail -n "+$((TAR_KEEP + 1))" | while read -r old; do
            rm -f "$dir/$old.tar.zst" "$dir/$old.tar.gz" "$dir/$old.tar" "$dir/$old.dump.gz" \
                "$dir/$old.meta.json" "$dir/$old.result.json"
            echo "removed $volume's $old (TAR_KEEP=$TAR_KEEP)"
        done
    done
    ;;
list)
    snapshots | while read -r id; do
        size=$(bytes_of "$(archive_of "$id")")
        consistent=true
        grep -q '"inconsistent"' "$dir/$id.meta.json" 2>/dev/null && consistent=false
        printf '{"id": "%s", "time": "%s", "size": %s, "consistent": %s}\n' \
            "$id" "$id" "$size" "$consistent"
    done
    ;;
volumes)  # the volumes this machine has archives of, as JSON lines, by name
    [ -d "$target/$SALVAGE_MACHINE_NAME" ] || exit 0
    for volume in "$target/$SALVAGE_MACHINE_NAME"/*/; do
        [ -d "$volume" ] || continue
        ls -1 "$volume" | grep -v '^\.' | grep -qE '\.tar(\.zst|\.gz)?$' || continue
        printf '{"volume": "%s"}\n' "$(basename "$volume")"
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
    archive=$(archive_of "$id")
    bad() { echo "archive $archive is damaged: $*" >&2; exit 1; }
    case "$archive" in
    *.gz) gzip -t "$archive" 2>/dev/null \
        || bad "gzip -t fails (a corrupt or truncated archive)" ;;
    *.tar.zst) command -v zstd >/dev/null || bad "it is zstd-compressed and this image has no zstd"
        zstd -tq "$archive" 2>/dev/null || bad "zstd -t fails (a corrupt or truncated archive)" ;;
    esac
    if [ "${archive%.dump.gz}" != "$archive" ]; then  # a stream: intact, and as written
        stored=$(sed -n 's/.*"bytes_stored": *\([0-9]*\).*/\1/p' "$dir/$id.result.json" 2>/dev/null)
        [ -z "$stored" ] || [ "$(bytes_of "$archive")" = "$stored" ] \
            || bad "it is $(bytes_of "$archive") bytes, its backup wrote $stored"
        # --restore: a dump is replayed into its database, never into a volume.
        echo "verified $id (a dump: its archive only)"
        exit 0
    fi
    listing=$(mktemp)
    tar_read "$archive" -tv > "$listing" 2>/dev/null || bad "tar cannot list it"
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
        tar_read "$archive" "-C $saved -x" meta/manifest 2>/dev/null \
            || bad "its backup recorded no manifest (TAR_MANIFEST=0, or an older crane)"
        tar_read "$archive" "-C /salvage --numeric-owner -x" volume 2>/dev/null \
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
        gzip -dc "$(archive_of "$id")"
        exit 0
    fi
    # Onto the volume mounted at /salvage/volume: its root directory too gets the saved
    # owner and mode (a database refuses a data directory with the wrong ones).
    # salvage hands over an empty scratch volume of its own, and copies it onto the
    # target only once this restore has succeeded.
    tar_read "$(archive_of "$id")" "-C /salvage --numeric-owner -x" volume
    echo "restored $id into $SALVAGE_VOLUME_NAME's target"
    ;;
*)
    echo "tar crane: action \"${SALVAGE_ACTION}\" is not supported" >&2
    exit 64
    ;;
esac
