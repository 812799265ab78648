#!/usr/bin/env bash
# The surrealism feature: surrealism-types' own Transfer/AsyncTransfer code
# running on our controllers.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --features surrealism
