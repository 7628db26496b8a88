#!/usr/bin/env bash
# `make docker-test`: a real build of docker/Dockerfile here, without a Docker engine, and the
# pipeline run inside the image (docker/README.md).
#
# buildah (chroot isolation) builds the image on a stand-in base: CUDA images cannot
# be pulled here, so debootstrap makes a Debian base (python3.11 and its venv inside) from the
# mirror apt is configured with, and BASE_IMAGE points the build at it. This machine's CA bundle
# and pip.conf are mounted for the build's RUN steps only (nothing machine-specific enters the
# Dockerfile). Then, inside the image: the package imports, `rls3 --help`, `rls3 check` and
# `dvc repro` of the smoke profile's CLIP report. Needs root (apt-get, debootstrap, chroot).
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${RLS3_DOCKER_TEST_DIR:-/var/tmp/rls3-docker-test}
SUITE=${RLS3_DEBIAN_SUITE:-bookworm}
BASE=localhost/rls3-test-base:${SUITE}
IMAGE=localhost/rls3-benchmark:test
# overlay shares each layer's files with the next; vfs (RLS3_STORAGE_DRIVER=vfs, where overlay
# mounts are not allowed) copies the whole tree per layer: about 8 GB a layer for this image.
DRIVER=${RLS3_STORAGE_DRIVER:-overlay}
STORE=(--storage-driver "$DRIVER" --root "$WORK/storage-$DRIVER" --runroot "$WORK/run-$DRIVER")

if ! command -v buildah >/dev/null || ! command -v debootstrap >/dev/null; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends buildah debootstrap >/dev/null
fi
mkdir -p "$WORK"
mirror=$(grep -h -m1 '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}')
mirror=${mirror:-$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list)}

if ! buildah "${STORE[@]}" inspect --type image "$BASE" >/dev/null 2>&1; then
    echo "docker-test: a $SUITE base from $mirror (debootstrap)"
    rm -rf "$WORK/rootfs"
    debootstrap --variant=minbase --include=ca-certificates \
        "$SUITE" "$WORK/rootfs" "$mirror" >"$WORK/debootstrap.log"
    # python3.11 and its venv through apt inside, which resolves their dependencies
    chroot "$WORK/rootfs" apt-get install -y -qq --no-install-recommends python3.11 \
        python3.11-venv >>"$WORK/debootstrap.log"
    chroot "$WORK/rootfs" apt-get clean
    ctr=$(buildah "${STORE[@]}" from scratch)
    buildah "${STORE[@]}" copy "$ctr" "$WORK/rootfs" / >/dev/null
    buildah "${STORE[@]}" config --cmd /bin/bash "$ctr"
    buildah "${STORE[@]}" commit --rm "$ctr" "$BASE" >/dev/null
    rm -rf "$WORK/rootfs"
fi

mounts=(--volume /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro)
[[ -f /etc/pip.conf ]] && mounts+=(--volume /etc/pip.conf:/etc/pip.conf:ro)
start=$(date +%s)
buildah "${STORE[@]}" bud --isolation chroot --layers --format docker "${mounts[@]}" \
    --build-arg "BASE_IMAGE=$BASE" -f docker/Dockerfile -t "$IMAGE" .
echo "docker-test: image built in $(($(date +%s) - start)) s"

ctr=$(buildah "${STORE[@]}" from "$IMAGE")
trap 'buildah "${STORE[@]}" rm "$ctr" >/dev/null' EXIT
inside() { buildah "${STORE[@]}" run --isolation chroot --workingdir /workspace "$ctr" -- "$@"; }
inside id -un
inside python -c "import benchmark, torch, open_clip, transformers; print('imports ok', torch.__version__)"
inside rls3 --help >/dev/null && echo "rls3 --help ok"
inside env RLS3_PROFILE=smoke /workspace/docker/entrypoint.sh rls3 check
start=$(date +%s)
inside env RLS3_PROFILE=smoke /workspace/docker/entrypoint.sh dvc repro report@clip
echo "docker-test: dvc repro report@clip (smoke) inside the image in $(($(date +%s) - start)) s"
inside test -s /workspace/results/report/clip/REPORT.md && echo "docker-test: passed"
