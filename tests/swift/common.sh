# Settings shared by start-swift.sh and stop-swift.sh (sourced, not run).
SWIFT_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SWIFT_REPO=$(cd "$SWIFT_HERE/../.." && pwd)

# /dev/shm: tmpfs takes Swift's large xattrs (ext4 does not) and makes fsync free.
if [[ -z "${SWIFT_STATE_DIR:-}" ]]; then
    if [[ -d /dev/shm && -w /dev/shm ]]; then
        SWIFT_STATE_DIR=/dev/shm/image_repo-swift-$(id -un)
    else
        SWIFT_STATE_DIR=${TMPDIR:-/tmp}/image_repo-swift-$(id -un)
    fi
fi
# The servers chdir('/'), so every path in their confs must be absolute.
STATE=$(realpath -m "$SWIFT_STATE_DIR")
# Marks a directory as ours, so SWIFT_WIPE=1 never removes anything else.
STATE_MARK=$STATE/.image_repo-swift-state
SERVICES=(account container object proxy)
