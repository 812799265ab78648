#!/usr/bin/env bash
# Fuzz targets: built and run briefly when cargo-fuzz can work here.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d fuzz ]; then
    echo "fuzz: no fuzz/ crate yet; skipped"
    exit 0
fi
