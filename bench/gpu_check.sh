#!/usr/bin/env bash
# `make gpu-check`: is alkit ready for a CUDA machine? Within 8 minutes on one GPU:
#   1. the gpu-marked tests                  (pytest -m gpu)
#   2. the full profile's ensemble training  (bench/gpu_train.py: members/s, bf16)
#   3. the full profile's pool scoring       (bench/gpu_score.py: frames/s, ours / bare)
#   4. DDP scoring over every visible GPU    (bench/gpu_ddp_score.py)
# Each bench's JSON line ({"bench", "figures", "targets", "met"}, its last stdout line) goes to
# $GPU_CHECK_OUT (default runs/gpu-check/results.jsonl), each log beside it; the last
# stdout lines are those JSON lines. Exit status 0 when every step ran and met its target.
#
#   bench/gpu_check.sh               on a CUDA machine
#   bench/gpu_check.sh --cpu-smoke   the same steps on a CPU in a minute or two (tiny sizes;
#                                    tests/test_gpu_check.py runs it in `make test`)
set -u -o pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
SMOKE=""
[ "${1:-}" = "--cpu-smoke" ] && SMOKE="--cpu-smoke"
OUT=${GPU_CHECK_OUT:-runs/gpu-check/results.jsonl}
LOGS=$(dirname "$OUT")
mkdir -p "$LOGS"
: >"$OUT"
export PYTHONUNBUFFERED=1

if [ -z "$SMOKE" ] && ! "$PY" -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
    "$PY" bench/gpu_train.py  # prints why (no CUDA build of torch, or no device) and exits
    exit 2
fi

failed=0
# step NAME SECONDS COMMAND...: runs COMMAND under a time limit, keeps its log, appends its
# last line (a bench's JSON summary) to $OUT; a failure or a missed target is reported
step() {
    local name=$1 limit=$2
    shift 2
    local log="$LOGS/$name.log" start=$SECONDS
    echo "== $name (limit ${limit} s): $*"
    if timeout --kill-after=10 "$limit" "$@" >"$log" 2>&1; then status=0; else status=$?; fi
    local last  # the bench's JSON line (the last one: other DDP ranks may print after it)
    last=$(grep '^{"bench"' "$log" | tail -n 1)
    if [ "$name" = gpu_tests ]; then
        last="{\"bench\": \"gpu_tests\", \"figures\": {\"summary\": \"$(grep -E '(passed|failed|skipped|error|no tests ran)' "$log" | tail -n 1 | tr -d '="')\"}, \"targets\": {\"exit_status\": 0}, \"met\": $([ $status = 0 ] && echo true || echo false)}"
    fi
    if [ $status -ne 0 ] || ! echo "$last" | grep -q '"met": true'; then
        failed=1
        echo "   FAILED or target missed (exit $status, $((SECONDS - start)) s); log: $log"
        tail -n 5 "$log" | sed 's/^/   | /'
    else
        echo "   ok in $((SECONDS - start)) s"
    fi
    case $last in {*) echo "$last" >>"$OUT" ;; esac
}

if [ -z "$SMOKE" ]; then
    step gpu_tests 120 "$PY" -m pytest -m gpu -q -p no:cacheprovider
fi
step gpu_train 150 "$PY" bench/gpu_train.py $SMOKE
step gpu_score 150 "$PY" bench/gpu_score.py $SMOKE
step gpu_ddp_score 90 "$PY" bench/gpu_ddp_score.py $SMOKE

echo "== results ($OUT)"
cat "$OUT"
exit $failed
