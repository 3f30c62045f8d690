#!/usr/bin/env bash
# step.sh TITLE LOG COMMAND...: one timed set-up step of `make build` and `make demo`.
# COMMAND's output goes to LOG, not the console. On a terminal a live line shows the seconds
# so far and LOG's last line (what the step is doing now). Then `done TITLE (12.3 s)`; on
# failure the log's tail and its path, and COMMAND's exit status.
set -uo pipefail
title=$1 log=$2
shift 2
mkdir -p "$(dirname "$log")"
start=$(date +%s.%N)
seconds() { awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
"$@" >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid"; printf "\n  interrupted %s after %s s\n" "$title" "$(seconds)"; exit 130' INT TERM
if [ -t 1 ]; then
  width=$(tput cols 2>/dev/null || echo 100)
  while kill -0 "$pid" 2>/dev/null; do
    last=$(tail -n 1 "$log" 2>/dev/null | tr -d '\r' | tr -s ' ')
    line=$(printf '  %s  %4.0f s  %s' "$title" "$(seconds)" "$last")
    printf '\r\033[K\033[2m%s\033[0m' "${line:0:$((width - 1))}"
    sleep 1
  done
  printf '\r\033[K'
fi
wait "$pid"
status=$?
if [ "$status" -ne 0 ]; then
  printf '  FAILED %s after %s s (exit %d); the end of %s:\n' "$title" "$(seconds)" "$status" "$log"
  tail -n 30 "$log" | sed 's/^/    /'
  exit "$status"
fi
if [ -t 1 ]; then
  printf '  \033[32mdone\033[0m %s \033[2m(%s s)\033[0m\n' "$title" "$(seconds)"
else
  printf '  done %s (%s s)\n' "$title" "$(seconds)"
fi
