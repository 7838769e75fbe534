#!/usr/bin/env bash
# Rebuilds fuzz/corpus/* seeds from docs/drift-api/examples (run by scripts/fuzz).
# Usage: fuzz/seeds/make-corpus.sh EXAMPLES_DIR
set -euo pipefail
ex="$1"
here="$(cd "$(dirname "$0")/.." && pwd)"
c="$here/corpus"
mkdir -p "$c/decode" "$c/pagination" "$c/csv_reader" "$c/rate_headers"
# Envelope index of each example (drift_client::fuzzing::Envelope::ALL order).
envelope_of() {
  case "$1" in
    conversations_list*) echo 0 ;; messages_*) echo 1 ;; accounts_*) echo 2 ;;
    contacts_by_email*) echo 3 ;; contact.json|contact_create_response*) echo 4 ;;
    custom_attributes*) echo 5 ;; user.json) echo 6 ;; users_by_ids*) echo 7 ;;
    teams*) echo 8 ;; playbooks*|conversational_landing*) echo 9 ;; meetings*) echo 10 ;;
    token_info*|oauth_token*) echo 11 ;; conversation_stats*) echo 12 ;; *) echo 13 ;;
  esac
}
for f in "$ex"/*.json; do
  name="$(basename "$f")"
  n="$(envelope_of "$name")"
  { printf "\\x$(printf %02x "$n")"; cat "$f"; } > "$c/decode/$name"
  # Every example also as an error body (envelope 13).
  { printf '\x0d'; cat "$f"; } > "$c/decode/err-$name"
  # JSONL push input: one example object per line.
  { printf '\x01'; tr -d '\n' < "$f"; echo; } > "$c/csv_reader/jsonl-$name"
done
cp "$here/seeds/csv/"* "$c/csv_reader/"
cp "$here/seeds/pagination/"* "$c/pagination/"
cp "$here/seeds/headers/"* "$c/rate_headers/"
