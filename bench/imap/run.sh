#!/usr/bin/env bash
# bench/imap/run.sh: IMAP of ironpost and of Dovecot, on this machine, in
# one run, configured the same way: virtual users with Argon2id passwords,
# one Maildir each, plaintext LOGIN from 127.0.0.1.
#
# The mailbox is made once: MESSAGES text messages of 2 to 8 KB (Received,
# From, To, Subject, Date, Message-ID, MIME headers; LF line ends) written
# straight into a Maildir's new/ under Dovecot's names (...,S=size,W=wire
# size); one message in a hundred has the word "zanzibar" in its body, and
# no other has it anywhere. It is copied to u1@example.test of each server,
# so that neither sees the other's index files.
#
# The load client (crates/testkit/src/bin/imap-load.rs) logs in, then
# measures, one after the other, the wall time of
#   select      SELECT INBOX
#   fetch_meta  FETCH 1:* (FLAGS UID RFC822.SIZE ENVELOPE)
#   fetch_body  FETCH 1:1000 BODY.PEEK[]
#   search      UID SEARCH TEXT "zanzibar"
#   store       STORE 1:* +FLAGS (\Seen)
# checking every answer (tagged OK, one FETCH per message with all the
# items asked for, BODY[] literals as long as RFC822.SIZE, the number of
# SEARCH hits, \Seen in every FETCH that STORE sends back), then takes the
# \Seen flags off again (STORE 1:* -FLAGS.SILENT, not measured) and logs
# out. Before measuring, each server gets one such run (discarded) that
# builds its indexes and caches; it also checks that both servers send the
# same bodies. Then ROUNDS runs per server, taking turns; the table shows
# the medians. Each run starts once the last run's file renames and index
# writes are on disk (`sync`) and the machine is idle, so that no work left
# over by one server falls into the other's measurements, and then with
# all of the server's files for u1 (its Maildir and its index) in the page
# cache, read just before. The disk reads during each run are counted.
#
# Idle connections: IDLE connections (default 1000) log in, spread over
# IDLE_USERS users (default 100; empty mailboxes), and do nothing more.
# The server's memory is measured before they connect and while they are
# all open: the sum over all its processes (for Dovecot: master, auth,
# anvil, log, config, imap-login, imap...) of the resident set (RSS) and
# of the proportional set (PSS, which counts a page shared by k processes
# as 1/k in each; the fairer sum for many processes sharing libraries).
# Dovecot runs its default process model: one imap process per logged-in
# connection (service imap { client_limit = 1 }).
#
# Needs root (Dovecot's master runs as root; Debian's dovecot-core and
# dovecot-imapd are installed if missing, without starting the system's
# Dovecot). Usage: bench/imap/run.sh [MESSAGES]   (default 10000)
# SERVERS="ironpost dovecot" (the default) or one of them; ROUNDS=5;
# IDLE=1000 (0: no idle connections), IDLE_USERS=100 (0 with IDLE=0); KEEP=1 keeps the work directory;
# WARM=0 measures without first reading the mailbox into the page cache;
# IRONPOST_BIN=path runs that ironpost binary instead of building one (to
# compare two builds).
set -euo pipefail
cd "$(dirname "$0")/../.."

MESSAGES=${1:-10000}
SERVERS=${SERVERS:-ironpost dovecot}
IP_OFFSET=${IP_OFFSET:-14000}      # ironpost's IMAP port: IP_OFFSET + 143
IP_PORT=$((IP_OFFSET + 143))
DV_PORT=${DV_PORT:-14343}
ROUNDS=${ROUNDS:-5}                # runs per server; the table shows the medians
IDLE=${IDLE:-1000}
WARM=${WARM:-1}                    # 0: do not read the mailbox into the page cache before each run
IDLE_USERS=${IDLE_USERS:-$((IDLE > 0 ? 100 : 0))}
BODY=1000                          # FETCH 1:BODY BODY.PEEK[]
WORD=zanzibar
HITS=$((MESSAGES / 100))           # the messages with the word: every 100th
CONN_LIMIT=$((IDLE > 10 ? IDLE : 10))   # connections per user and address
START=$(date +%s)

has() { [[ " $SERVERS " == *" $1 "* ]]; }
has ironpost || has dovecot || { echo "bench: SERVERS names neither ironpost nor dovecot" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "bench: run as root (Dovecot's master needs it)" >&2; exit 1; }
need_mb=$(( MESSAGES * 3 * 9 / 1000 + 100 ))   # 4 KB blocks: ~9 KB a message, at most
have_mb=$(df -Pm /tmp | awk 'NR == 2 { print $4 }')
[ "$have_mb" -gt "$need_mb" ] || { echo "bench: $need_mb MB needed in /tmp, $have_mb MB free" >&2; exit 1; }
ports=()
has ironpost && for p in 25 110 143 465 587 993 995; do ports+=("$((IP_OFFSET + p))"); done
has dovecot && ports+=("$DV_PORT")
for port in "${ports[@]}"; do
    if (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null; then
        echo "bench: port $port is in use (set IP_OFFSET or DV_PORT)" >&2; exit 1
    fi
done
# A descriptor per idle connection, in the servers and in the load client.
ulimit -n $((IDLE * 4 + 1024)) || { echo "bench: cannot raise ulimit -n for $IDLE connections" >&2; exit 1; }

# --- Dovecot's packages, without starting Debian's Dovecot --------------------
missing=()
for p in dovecot-core dovecot-imapd; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "bench: installing ${missing[*]}" >&2
    policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        policy=yes
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    [ -z "$policy" ] || { rm -f /usr/sbin/policy-rc.d; trap - EXIT; }
fi

if [ -n "${IRONPOST_BIN:-}" ]; then
    IRONPOST=$(realpath "$IRONPOST_BIN")
else
    has ironpost && cargo build --release -q -p ironpost
    IRONPOST=$PWD/target/release/ironpost
fi
cargo build --release -q -p ironpost-testkit --bin imap-load
LOAD=$PWD/target/release/imap-load

WORK=$(mktemp -d /tmp/ironpost-imap.XXXXXX)
chmod 755 "$WORK"   # Dovecot's login and mail processes run as other users
DV=$WORK/dv
IP_BOX=$WORK/ip/vmail/example.test/u1   # u1's Maildir at each server
DV_BOX=$DV/vmail/example.test/u1
cleanup() {
    set +e
    exec 7>&- 2>/dev/null
    [ -n "${HOLD_PID:-}" ] && kill "$HOLD_PID" 2>/dev/null
    [ -e "$DV/dovecot.conf" ] && dovecot -c "$DV/dovecot.conf" stop >/dev/null 2>&1
    [ -n "${IP_PID:-}" ] && kill "$IP_PID" 2>/dev/null && wait "$IP_PID" 2>/dev/null
    for _ in $(seq 50); do [ -e "$DV/run/master.pid" ] || break; sleep 0.1; done
    [ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

# --- the mailbox: one Maildir, written once, then copied -----------------------
python3 - "$WORK/template" "$MESSAGES" "$WORD" <<'PY'
import os, random, sys, time
maildir, n, word = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rnd = random.Random(1939)
words = ("the of and to in is that for it as was with be by on not he this are or his from at "
         "which but have an they you were her she there been one all we their has would when if so "
         "no out up into mailbox server message delivery queue retrieval protocol network address "
         "domain header body meeting report tomorrow please attached review budget project update "
         "schedule thanks regards").split()
host, pid = "bench.example.test", os.getpid()
first = int(time.time()) - n
for sub in ("cur", "new", "tmp"):
    os.makedirs(os.path.join(maildir, sub))
for q in range(1, n + 1):
    t = first + q
    date = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(t))
    s = q % 97
    text = (f"Return-Path: <sender{s}@example.org>\n"
            f"Delivered-To: user@example.test\n"
            f"Received: from mx.example.org (mx.example.org [192.0.2.{q % 250 + 1}])\n"
            f"\tby mail.example.test with ESMTPS id {q:010X}\n"
            f"\tfor <user@example.test>; {date}\n"
            f"From: Sender {s} <sender{s}@example.org>\n"
            f"To: User <user@example.test>\n"
            f"Subject: Message {q}: {' '.join(rnd.choices(words, k=5))}\n"
            f"Date: {date}\n"
            f"Message-ID: <{t}.{q}@example.org>\n"
            f"MIME-Version: 1.0\n"
            f"Content-Type: text/plain; charset=us-ascii\n"
            f"Content-Transfer-Encoding: 7bit\n\n")
    target = rnd.randint(2048, 8192)
    lines = []
    size = len(text)
    while size < target:
        line = "" if rnd.random() < 0.06 else " ".join(rnd.choices(words, k=rnd.randint(8, 14)))[:76]
        lines.append(line)
        size += len(line) + 1
    if q % 100 == 0:   # the search word, in the body of every 100th message
        at = rnd.randrange(len(lines))
        lines[at] = (lines[at] + f" {word} " + " ".join(rnd.choices(words, k=3))).strip()
    data = (text + "\n".join(lines) + "\n").encode()
    wire = len(data) + data.count(b"\n")
    name = f"{t}.M{q % 1000000}P{pid}Q{q}.{host},S={len(data)},W={wire}"
    with open(os.path.join(maildir, "new", name), "wb") as f:
        f.write(data)
PY
T_MADE=$(date +%s)

# --- ironpost ---------------------------------------------------------------------
if has ironpost; then
    $IRONPOST quickstart "$WORK/ip" --domain example.test --user jerry --password secret \
        --port-offset "$IP_OFFSET" >/dev/null
    grep -q "^127.0.0.1:$IP_PORT .*imapd" "$WORK/ip/etc/master.cf" \
        || { echo "bench: no imapd on 127.0.0.1:$IP_PORT in ironpost's master.cf (SERVERS=dovecot runs Dovecot alone)" >&2; exit 1; }
    cat >> "$WORK/ip/etc/main.cf" <<CF
disable_plaintext_auth = no
login_trusted_networks = 127.0.0.0/8
mail_max_userip_connections = $CONN_LIMIT
# Room for $IDLE sessions: as in Postfix, a service whose maxproc is -
# takes default_process_limit (100) at a time.
default_process_limit = $((IDLE + 100))
CF
    mkdir -p "$WORK/ip/vmail/example.test"
    echo secret | $IRONPOST user add "u1@example.test" --password-stdin -c "$WORK/ip/etc" >/dev/null
    cp -r "$WORK/template" "$IP_BOX"
    for i in $(seq "$IDLE_USERS"); do
        echo secret | $IRONPOST user add "idle$i@example.test" --password-stdin -c "$WORK/ip/etc" >/dev/null
        mkdir -p "$WORK/ip/vmail/example.test/idle$i/"{cur,new,tmp}
    done
fi

# --- Dovecot, the same way ------------------------------------------------------
if has dovecot; then
    mkdir -p "$DV/log" "$DV/state" "$DV/vmail/example.test"
    HASH=$(doveadm -c /dev/null pw -s ARGON2ID -p secret)   # the parameters ironpost uses: m=65536,t=3,p=1
    echo "u1@example.test:$HASH" >> "$DV/passwd"
    cp -r "$WORK/template" "$DV_BOX"
    for i in $(seq "$IDLE_USERS"); do
        echo "idle$i@example.test:$HASH" >> "$DV/passwd"
        mkdir -p "$DV/vmail/example.test/idle$i/"{cur,new,tmp}
    done
    chown -R nobody:nogroup "$DV/vmail"
    cat > "$DV/dovecot.conf" <<CF
# A private Dovecot for bench/imap/run.sh: IMAP only, on 127.0.0.1:$DV_PORT.
base_dir = $DV/run
state_dir = $DV/state
instance_name = ironpost-bench-dovecot
log_path = $DV/log/dovecot.log
info_log_path = $DV/log/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
login_trusted_networks = 127.0.0.0/8
auth_mechanisms = plain
passdb {
  driver = passwd-file
  args = $DV/passwd
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=$DV/vmail/%d/%n
}
mail_location = maildir:~
# Room for $IDLE logged-in connections (the defaults stop at 100 logins
# at a time and 10 connections per user and address; auth and anvil need
# a client per login process, imap-urlauth-login's 100 included).
default_client_limit = $((IDLE + 400))
mail_max_userip_connections = $CONN_LIMIT
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $DV_PORT
  }
  inet_listener imaps {
    port = 0
  }
  process_limit = $((IDLE + 100))
}
service imap {
  process_limit = $((IDLE + 100))
}
CF
fi
rm -rf "$WORK/template"
sync   # the copies' pages go to disk now, not while we measure
T_COPIED=$(date +%s)

if has ironpost; then
    $IRONPOST serve -c "$WORK/ip/etc" 2>"$WORK/ip.err" & IP_PID=$!
fi
if has dovecot; then
    dovecot -c "$DV/dovecot.conf" || { cat "$DV/log/dovecot.log" >&2; exit 1; }
fi
port_of() { if [ "$1" = ironpost ]; then echo "$IP_PORT"; else echo "$DV_PORT"; fi; }
for s in $SERVERS; do
    for _ in $(seq 100); do
        (exec 3<>/dev/tcp/127.0.0.1/"$(port_of "$s")") 2>/dev/null && break
        sleep 0.1
    done
done

# load NAME [OPTIONS...]: one run of the load client over u1's mailbox; prints its line
load() {
    local name=$1; shift
    local out
    if ! out=$($LOAD "127.0.0.1:$(port_of "$name")" --user u1@example.test --password secret \
            --expect "$MESSAGES" --body "$BODY" --word "$WORD" --expect-hits "$HITS" "$@" 2>"$WORK/load.err"); then
        echo "bench: $name:" >&2
        cat "$WORK/load.err" >&2
        exit 1
    fi
    echo "$out"
}
field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }

# Warm-up: one run per server, discarded; it also compares the bodies.
for s in $SERVERS; do
    load "$s" --checksum >"$WORK/warm.$s"
done
if has ironpost && has dovecot; then
    ip_warm=$(cat "$WORK/warm.ironpost") dv_warm=$(cat "$WORK/warm.dovecot")
    if [ "$(field "$ip_warm" checksum)" != "$(field "$dv_warm" checksum)" ] \
            || [ "$(field "$ip_warm" body_bytes)" != "$(field "$dv_warm" body_bytes)" ]; then
        echo "bench: the servers sent different messages:" >&2
        echo "  ironpost: $ip_warm" >&2
        echo "  dovecot:  $dv_warm" >&2
        exit 1
    fi
fi
T_WARM=$(date +%s)

. bench/settle.sh

# files NAME: the directories of u1's files at that server: the Maildir and
# the index (Dovecot keeps its index in the Maildir)
files() {
    if [ "$1" = ironpost ]; then
        echo "$IP_BOX" "$WORK/ip/data/index"
    else
        echo "$DV_BOX"
    fi
}
# The octets read from the disks so far (KB), all of them.
disk_read_kb() { cat /sys/block/*/stat | awk '{ s += $3 } END { printf "%d", s / 2 }'; }

# The servers take turns, round by round. Unless WARM=0, each run starts
# with all of its server's files for u1 in the page cache: cat reads them
# just before. Without this, what is measured depends on the host as well:
# on a virtual machine whose host takes back cold page-cache pages, some
# messages of one run are read from the disk, and others not, at random.
# Each run's line gets the disk reads during it (disk_read_kb).
for _ in $(seq "$ROUNDS"); do
    for s in $SERVERS; do
        settle
        # shellcheck disable=SC2046   # the directories are words
        [ "$WARM" = 0 ] || find $(files "$s") -type f -exec cat {} + >/dev/null
        before=$(disk_read_kb)
        line=$(load "$s")
        echo "$line disk_read_kb=$(($(disk_read_kb) - before))" >>"$WORK/runs.$s"
    done
done
T_ROUNDS=$(date +%s)

# memory PID: "RSS PSS PROCESSES" (KB) of PID and all its descendants
memory() {
    python3 - "$1" <<'PY'
import os, sys
root = int(sys.argv[1])
children = {}
for p in os.listdir("/proc"):
    if p.isdigit():
        try:
            with open(f"/proc/{p}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        children.setdefault(ppid, []).append(int(p))
todo, rss, pss, n = [root], 0, 0, 0
while todo:
    p = todo.pop()
    todo += children.get(p, [])
    try:
        with open(f"/proc/{p}/smaps_rollup") as f:
            for line in f:
                k, v = line.split(":", 1)
                if k == "Rss":
                    rss += int(v.split()[0])
                elif k == "Pss":
                    pss += int(v.split()[0])
        n += 1
    except (OSError, ValueError):
        pass
print(rss, pss, n)
PY
}
server_pid() { if [ "$1" = ironpost ]; then echo "$IP_PID"; else cat "$DV/run/master.pid"; fi; }

# idle NAME: memory before and with $IDLE logged-in connections -> $WORK/idle.NAME
idle() {
    local name=$1 pid before after
    pid=$(server_pid "$name")
    sleep 1
    before=$(memory "$pid")
    rm -f "$WORK/hold"; mkfifo "$WORK/hold"
    $LOAD "127.0.0.1:$(port_of "$name")" --idle "$IDLE" --users "$IDLE_USERS" \
        --user 'idle%n@example.test' --password secret <"$WORK/hold" >"$WORK/idle.out" 2>"$WORK/idle.err" &
    HOLD_PID=$!
    exec 7>"$WORK/hold"
    while ! grep -q '^ready=1' "$WORK/idle.out"; do
        kill -0 "$HOLD_PID" 2>/dev/null || { echo "bench: $name, idle connections:" >&2; cat "$WORK/idle.err" >&2; exit 1; }
        sleep 0.5
    done
    sleep 2
    after=$(memory "$pid")
    exec 7>&-
    wait "$HOLD_PID" || { echo "bench: $name, logging out the idle connections:" >&2; cat "$WORK/idle.err" >&2; exit 1; }
    HOLD_PID=
    echo "$before $after $(cat "$WORK/idle.out")" >"$WORK/idle.$name"
}
if [ "$IDLE" -gt 0 ]; then
    for s in $SERVERS; do
        idle "$s"
    done
fi
T_END=$(date +%s)

# median of the numbers on standard input
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# values SERVER FIELD: that field of each of the server's runs, a line each
values() { local line; while read -r line; do field "$line" "$2"; done <"$WORK/runs.$1"; }
# ms SERVER STEP: the median time of a step, in milliseconds
ms() {
    values "$1" "${2}_s" | median |
        awk '{ v = $1 * 1000; printf (v < 0.1 ? "%.3f" : v < 1 ? "%.2f" : "%.1f"), v }'
}
# per_conn SERVER COLUMN: KB per idle connection (COLUMN 1 = RSS, 2 = PSS)
per_conn() {
    read -r -a m <"$WORK/idle.$1"
    awk -v b="${m[$(($2 - 1))]}" -v a="${m[$(($2 + 2))]}" -v n="$IDLE" 'BEGIN { v = (a - b) / n; if (v < 1) print "<1"; else printf "%.0f", v }'
}
ratio() { awk -v i="$1" -v d="$2" 'BEGIN { if (i > 0) printf (d / i < 100 ? "%.1f" : "%.0f"), d / i; else print "-" }'; }

DV_VERSION=$(dovecot --version | cut -d' ' -f1)
some=$(echo "$SERVERS" | awk '{ print $1 }')
desc="$(nproc) cores, $(uname -sr)"
has dovecot && desc="$desc, Dovecot $DV_VERSION"
has ironpost && desc="$desc, ironpost $($IRONPOST version | cut -d' ' -f2)"
echo "$desc, one mailbox of $MESSAGES messages of 2-8 KB" \
    "($(awk -v b="$(field "$(cat "$WORK/warm.$some")" body_bytes)" -v n="$BODY" -v m="$MESSAGES" \
        'BEGIN { printf "%.0f", b / (n < m ? n : m) * m / 1e6 }') MB), $HITS of them with the search word;" \
    "one warm-up run per server before measuring; median of $ROUNDS runs"
echo
if has ironpost && has dovecot; then
    echo "| step                                            | ironpost | Dovecot | Dovecot / ironpost |"
    echo "|-------------------------------------------------|---------:|--------:|-------------------:|"
else
    echo "| step                                            | ${SERVERS^} |"
    echo "|-------------------------------------------------|---------:|"
fi
row() {
    local label=$1 ip=$2 dv=$3
    if has ironpost && has dovecot; then
        printf '| %-47s | %8s | %7s | %18s |\n' "$label" "$ip" "$dv" "$(ratio "$ip" "$dv")"
    elif has ironpost; then
        printf '| %-47s | %8s |\n' "$label" "$ip"
    else
        printf '| %-47s | %8s |\n' "$label" "$dv"
    fi
}
steprow() {
    local ip="" dv=""
    has ironpost && ip=$(ms ironpost "$2")
    has dovecot && dv=$(ms dovecot "$2")
    row "$1 (ms)" "$ip" "$dv"
}
steprow "SELECT INBOX" select
steprow "FETCH 1:* (FLAGS UID RFC822.SIZE ENVELOPE)" fetch_meta
steprow "FETCH 1:$BODY BODY.PEEK[]" fetch_body
steprow "UID SEARCH TEXT \"$WORD\"" search
steprow "STORE 1:* +FLAGS (\\Seen)" store
memrow() {
    local ip="" dv=""
    has ironpost && ip=$(per_conn ironpost "$2")
    has dovecot && dv=$(per_conn dovecot "$2")
    row "$1" "$ip" "$dv"
}
if [ "$IDLE" -gt 0 ]; then
    memrow "memory per idle connection, RSS (KB)" 1
    memrow "memory per idle connection, PSS (KB)" 2
fi
echo
for s in $SERVERS; do
    [ "$IDLE" -gt 0 ] || break
    read -r -a m <"$WORK/idle.$s"
    echo "$s: before the idle connections $((m[0] / 1024)) MB RSS, $((m[1] / 1024)) MB PSS in ${m[2]} processes;" \
        "with $IDLE ($IDLE_USERS users, logged in in $(field "${m[*]:6}" login_s) s)" \
        "$((m[3] / 1024)) MB RSS, $((m[4] / 1024)) MB PSS in ${m[5]} processes"
done
disk() { values "$1" disk_read_kb | sort -g | tail -1; }
reads=""
for s in $SERVERS; do
    reads="$reads${reads:+, }$s $(disk "$s") KB"
done
echo "page cache: $([ "$WARM" = 0 ] && echo "as it was" || echo "each server's files read just before each run");" \
    "disk reads during a run (the most of any run): $reads"
cpu() { values "$1" client_cpu_s | median; }
cpus=""
for s in $SERVERS; do
    cpus="$cpus${cpus:+, }$s $(cpu "$s") s"
done
echo "load client CPU over the steps (medians): $cpus"
echo "mailbox made in $((T_MADE - START)) s (with the build), copied in $((T_COPIED - T_MADE)) s," \
    "warm-up $((T_WARM - T_COPIED)) s, rounds $((T_ROUNDS - T_WARM)) s, idle connections $((T_END - T_ROUNDS)) s"
