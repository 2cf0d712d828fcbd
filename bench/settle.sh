# bench/settle.sh, sourced by the benches: `settle` waits, between two
# measured runs, until what the last run left dirty is written back (sync)
# and whatever work a server still does after its last answer is over (the
# machine's CPUs idle for 0.2 s; at most 30 s), so that it is not done
# during the next run, which may be the other server's.
settle() {
    sync
    python3 - <<'PY'
import time
def busy_total():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v) - v[3] - v[4], sum(v)   # all but idle and iowait
b0, t0 = busy_total()
for _ in range(150):
    time.sleep(0.2)
    b1, t1 = busy_total()
    if t1 > t0 and (b1 - b0) / (t1 - t0) < 0.05:
        break
    b0, t0 = b1, t1
PY
}
