#!/usr/bin/env bash
# Builds the envelope helper image (examples/kubernetes/Dockerfile) with a reproducible
# tag and timestamps: the tag is <version>-g<commit> of a clean checkout, and every
# timestamp in the image is the commit's time (SOURCE_DATE_EPOCH).
#
#   scripts/build-image.sh [--print-tag] [--allow-dirty] [REPOSITORY]
#
# REPOSITORY defaults to localhost/envelope. The builder is the first of docker,
# podman, buildah found (override with BUILDER=...). --print-tag prints the tag it would
# build and exits. A dirty tree is refused: its tag would name a commit it is not.
set -euo pipefail
cd "$(dirname "$0")/.."

print_tag=0 allow_dirty=0 repository=localhost/envelope
for arg in "$@"; do
  case "$arg" in
    --print-tag) print_tag=1 ;;
    --allow-dirty) allow_dirty=1 ;;
    -*) echo "build-image.sh: unknown option $arg" >&2; exit 2 ;;
    *) repository="$arg" ;;
  esac
done

version="$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' rust/Cargo.toml)"
if [ -z "$version" ]; then
  echo "build-image.sh: no version in rust/Cargo.toml [workspace.package]" >&2
  exit 1
fi
commit="$(git rev-parse --short=12 HEAD)"
dirty=""
if [ -n "$(git status --porcelain -- examples/kubernetes/Dockerfile .dockerignore \
  pyproject.toml README.md rust src)" ]; then
  if [ "$allow_dirty" -eq 0 ]; then
    echo "build-image.sh: uncommitted changes in the build context; commit them or" \
      "pass --allow-dirty (the tag then ends in -dirty)" >&2
    exit 1
  fi
  dirty="-dirty"
fi
tag="${repository}:${version}-g${commit}${dirty}"
if [ "$print_tag" -eq 1 ]; then
  echo "$tag"
  exit 0
fi

SOURCE_DATE_EPOCH="$(git log -1 --format=%ct)"
export SOURCE_DATE_EPOCH
builder="${BUILDER:-}"
if [ -z "$builder" ]; then
  for candidate in docker podman buildah; do
    if command -v "$candidate" >/dev/null; then builder="$candidate"; break; fi
  done
fi
case "$builder" in
  docker) set -- docker build --build-arg "SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH" ;;
  podman | buildah)
    set -- "$builder" build --timestamp "$SOURCE_DATE_EPOCH" \
      --build-arg "SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH" ;;
  "") echo "build-image.sh: no docker, podman or buildah found" >&2; exit 1 ;;
  *) echo "build-image.sh: unknown builder $builder" >&2; exit 2 ;;
esac
"$@" -f examples/kubernetes/Dockerfile -t "$tag" .
echo "$tag"
