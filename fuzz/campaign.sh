#!/bin/sh
# Every target for RUNS inputs (default 1,000,000), one after another, with atheris; a log line per target.
# Usage: fuzz/campaign.sh [RUNS] [LOG]    (from the repository root)
RUNS=${1:-1000000}
LOG=${2:-fuzz/campaign.log}
for target in ntlm_negotiate ntlm_challenge ntlm_authenticate smb2_message spnego decode server; do
    start=$(date +%s)
    python fuzz/run.py --target "$target" --runs "$RUNS" > "fuzz/work-$target.log" 2>&1
    rc=$?
    end=$(date +%s)
    units=$(grep -a 'stat::number_of_executed_units' "fuzz/work-$target.log" | awk '{print $2}')
    rate=$(grep -a 'stat::average_exec_per_sec' "fuzz/work-$target.log" | awk '{print $2}')
    rss=$(grep -a 'stat::peak_rss_mb' "fuzz/work-$target.log" | awk '{print $2}')
    echo "$target rc=$rc executed=$units exec_per_sec=$rate peak_rss_mb=$rss seconds=$((end - start))" >> "$LOG"
done
