#!/usr/bin/env bash
# The container's entry point: RLS3_PROFILE (if set) picks the params profile, then the command
# runs (default `dvc repro`). The profile is written into params.yaml because DVC's stages read
# it from there.
set -euo pipefail
if [[ -n "${RLS3_PROFILE:-}" ]]; then
    if ! grep -q "^  ${RLS3_PROFILE}:$" params.yaml; then
        echo "RLS3_PROFILE=${RLS3_PROFILE} is not a profile of params.yaml" >&2
        exit 2
    fi
    sed -i "s/^profile: .*/profile: ${RLS3_PROFILE}/" params.yaml
fi
exec "$@"
