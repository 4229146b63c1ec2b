#!/bin/sh
# salvage reference tar crane (crane API 1), SALVAGE_ACTION=backup.
#   TAR_TARGET  where archives go (default /salvage/target, mount it from the crane config)
#   TAR_KEEP    keep only the newest N archives of each volume (default: keep all)
set -eu

target="${TAR_TARGET:-/salvage/target}"
action="${SALVAGE_ACTION:-backup}"

case "$action" in
backup)
    dir="$target/$SALVAGE_MACHINE_NAME/$SALVAGE_VOLUME_NAME"
    stamp=$(date -u -d "@$SALVAGE_TIDE_TIMESTAMP" +%Y%m%dT%H%M%SZ)
    mkdir -p "$dir"
    partial="$dir/.$stamp.tar.gz.partial"
    trap 'rm -f "$partial"' EXIT
    # The volume and its metadata travel together: restore needs both.
    tar -C /salvage -czf "$partial" volume meta
    cp /salvage/meta/meta.json "$dir/$stamp.meta.json"
    mv "$partial" "$dir/$stamp.tar.gz"
    trap - EXIT
    echo "wrote $dir/$stamp.tar.gz ($(wc -c < "$dir/$stamp.tar.gz") bytes)"
    if [ -n "${TAR_KEEP:-}" ]; then
        ls -1 "$dir" | grep '\.tar\.gz$' | sort -r | tail -n "+$((TAR_KEEP + 1))" |
        while read -r old; do
            rm -f "$dir/$old" "$dir/${old%.tar.gz}.meta.json"
            echo "removed $old (TAR_KEEP=$TAR_KEEP)"
        done
    fi
    ;;
*)
    echo "tar crane: action \"$action\" is not supported by this crane" >&2
    exit 64
    ;;
esac
