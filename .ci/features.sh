#!/usr/bin/env bash
# The optional client features, off by default: `limen` (limen-core graphs
# and runtimes on our manager) and `surrealism` (surrealism-types' own
# Transfer/AsyncTransfer code on our linear memory). One build with every
# feature on runs their suites beside all the default ones.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --all-features
