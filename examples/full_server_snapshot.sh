#!/bin/sh
# The weekly full-server backup of a consistent filesystem snapshot (see docs/vault.md,
# "Backing up a whole server").
#
# A running server changes while it is read; a snapshot freezes one moment, as after a power cut,
# which databases and journaling filesystems recover from. This script takes the snapshot, backs it
# up as lineage full-server, and removes it whatever happens (the trap), so a failed run never
# leaves a snapshot filling the volume group or pinning old blocks.
#
# Run as root (every file readable; owners, xattrs, ACLs and devices recorded), one at a time:
#
#   0 3 * * 0  root  flock -n /run/ctfy-full.lock /opt/ctfy/full_server_snapshot.sh lvm
#
# Usage: full_server_snapshot.sh lvm|btrfs
#
# Settings, from the environment (defaults in brackets):
#   CTFY_CONFIG     the ctfy-vault config file [/etc/ctfy-vault/ctfy-vault.toml]
#   CTFY_SNAPSHOT   where the snapshot is mounted or made [/mnt/snap]; it is stored as its base
#                   name (snap/...), so keep it the same every week: the last snapshot is then the
#                   parent, and unchanged files are not read again
#   LVM_VOLUME      lvm: the logical volume to snapshot [vg0/root]
#   LVM_SIZE        lvm: copy-on-write room for the blocks that change during the backup [10G];
#                   a snapshot that fills up is invalid and the backup fails, so size it for the
#                   busiest hour of the week
#   BTRFS_SUBVOLUME btrfs: the subvolume to snapshot [/]; nested subvolumes are not included
#
# Exit status: ctfy-vault's (0 ok, 1 failed, 2 configuration, 3 a target missed a write: run
# heal), or the failing snapshot command's status when none could be made (nothing is backed up).
set -eu

kind=${1:-}
config=${CTFY_CONFIG:-/etc/ctfy-vault/ctfy-vault.toml}
snap=${CTFY_SNAPSHOT:-/mnt/snap}
volume=${LVM_VOLUME:-vg0/root}
size=${LVM_SIZE:-10G}
subvolume=${BTRFS_SUBVOLUME:-/}
# The snapshot's name next to the volume: vg0/root -> vg0/ctfy-snap.
snapshot_lv="${volume%/*}/ctfy-snap"

cleanup() {
    # Every step may have failed half way: undo what exists, quietly, and never fail here.
    case "$kind" in
    lvm)
        if mountpoint -q "$snap"; then umount "$snap" || true; fi
        if lvs "$snapshot_lv" >/dev/null 2>&1; then lvremove -y "$snapshot_lv" >/dev/null || true; fi
        ;;
    btrfs)
        if [ -d "$snap" ] && btrfs subvolume show "$snap" >/dev/null 2>&1; then
            btrfs subvolume delete "$snap" >/dev/null || true
        fi
        ;;
    esac
}

case "$kind" in
lvm)
    # lvcreate suspends the volume, which freezes the filesystem (fsfreeze) for the instant the
    # snapshot is taken: what was written before is in it, nothing half written.
    cleanup # a snapshot left by a run that was killed
    trap cleanup EXIT
    lvcreate --snapshot --size "$size" --name ctfy-snap "$volume"
    mkdir -p "$snap"
    # Read-only; XFS also needs nouuid to mount a second copy of one filesystem.
    if [ "$(blkid -o value -s TYPE "/dev/$snapshot_lv")" = xfs ]; then
        mount -o ro,nouuid "/dev/$snapshot_lv" "$snap"
    else
        mount -o ro "/dev/$snapshot_lv" "$snap"
    fi
    ;;
btrfs)
    # A read-only snapshot is instant and needs no size; it must be on the same filesystem.
    cleanup
    trap cleanup EXIT
    btrfs subvolume snapshot -r "$subvolume" "$snap"
    ;;
*)
    echo "usage: $0 lvm|btrfs" >&2
    exit 2
    ;;
esac

# Not exec: the trap must run after the backup to remove the snapshot. set -e would skip the
# status, so keep it by hand.
status=0
ctfy-vault backup full-server "$snap" --config "$config" || status=$?
exit "$status"
