#!/usr/bin/env bash
# The demo: two devices' stores, kept in step offline by export and import, with a conflict
# surfaced and resolved. Everything happens in a temporary directory, removed at the end.
set -euo pipefail
hubsync=${HUBSYNC:-.build/debug/hubsync}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
laptop=(--data "$work/laptop")
desktop=(--data "$work/desktop")
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ hubsync'; printf ' %q' "$@"; printf '\n'; "$hubsync" "$@"; }

say "Two devices, each with its own identity and store"
run init --name laptop "${laptop[@]}"
run init --name desktop "${desktop[@]}"

say "On the laptop: a persona, memories and a preference"
run put personas ada --json '{"name": "Ada", "style": "warm", "traits": ["curious", "precise"]}' "${laptop[@]}"
run put memories m1 --json '{"text": "Prefers tea over coffee", "tags": ["food"]}' "${laptop[@]}"
run put memories m2 --json '{"text": "Working on the analytical engine", "tags": ["work"]}' "${laptop[@]}"
run put preferences theme --json '{"value": {"mode": "dark", "accent": "teal"}}' "${laptop[@]}"
run add memories m2 tags important "${laptop[@]}"
run get personas ada "${laptop[@]}"
run list memories "${laptop[@]}"

say "Offline sync: export on the laptop, import on the desktop"
run export "$work/laptop.jsonl" "${laptop[@]}"
run import "$work/laptop.jsonl" "${desktop[@]}" 2>/dev/null
run get personas ada "${desktop[@]}"

say "Both devices edit the same field while apart"
run put personas ada --json '{"style": "formal"}' "${laptop[@]}"
run put personas ada --json '{"style": "playful"}' "${desktop[@]}"
run export "$work/laptop.jsonl" "${laptop[@]}"
run export "$work/desktop.jsonl" "${desktop[@]}"
run import "$work/desktop.jsonl" "${laptop[@]}" 2>/dev/null
run import "$work/laptop.jsonl" "${desktop[@]}" 2>/dev/null

say "Both show the same value, and both list the same conflict: nothing was lost"
run get personas ada "${laptop[@]}"
run conflicts "${desktop[@]}"

say "Resolve on the laptop; the resolution travels like any edit"
run resolve personas ada style --value '"formal but kind"' "${laptop[@]}"
run export "$work/laptop.jsonl" "${laptop[@]}"
run import "$work/laptop.jsonl" "${desktop[@]}" 2>/dev/null
run conflicts "${desktop[@]}"
run get personas ada "${desktop[@]}"
say "Done: the laptop and the desktop hold the same records."
