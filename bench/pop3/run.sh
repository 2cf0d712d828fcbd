#!/usr/bin/env bash
# bench/pop3/run.sh: POP3 throughput of ironpost and of Dovecot, on this
# machine, in one run, configured the same way: virtual users with
# Argon2id passwords, one Maildir each, plaintext logins from 127.0.0.1,
# UIDLs %08Xu%08Xv, no flag changes on RETR (ironpost makes none; Dovecot
# is told pop3_no_flag_updates = yes).
#
# The mailboxes are made once: MESSAGES text messages of 2 to 8 KB (headers,
# some lines that need dot-stuffing, LF line ends) written straight into a
# Maildir's new/ under Dovecot's names (...,S=size,W=wire size), then
# copied to u1..u20@example.test of each server, so that neither sees the
# other's index files (2 x 20 x 53 MB at 10,000 messages: with enough
# memory, all of it is in the page cache while we measure).
#
# The load client (crates/testkit/src/bin/pop3-load.rs) logs in N clients
# (one thread and connection each), then, all together, measures
#   listing = wall time of STAT + LIST + UIDL
#   RETR    = RETR of every message (pipelined in batches of 64 when both
#             servers announce PIPELINING), as messages/s and MB/s
#             (10^6 bytes of message, CRLF line ends, after un-stuffing)
# checking every answer (CRLF.CRLF ends, LIST sizes = bytes received), and
# QUITs without DELE, so the mailboxes stay the same from row to row.
# Rows: 1 client on one mailbox, 20 clients on 20 mailboxes. Before
# measuring, each server gets one full 20-client run (discarded) that
# builds its indexes; it also checks that both servers send the same bytes.
#
# Needs root (Dovecot's master runs as root; Debian's dovecot-core and
# dovecot-pop3d are installed if missing, without starting the system's
# Dovecot). Usage: bench/pop3/run.sh [MESSAGES]   (default 10000)
# KEEP=1 keeps the work directory.
set -euo pipefail
cd "$(dirname "$0")/../.."

MESSAGES=${1:-10000}
USERS=20
IP_OFFSET=${IP_OFFSET:-13000}      # ironpost's POP3 port: IP_OFFSET + 110
IP_PORT=$((IP_OFFSET + 110))
DV_PORT=${DV_PORT:-13210}
BATCH=64
ROUNDS=${ROUNDS:-5}                # runs per row; the table shows the medians
START=$(date +%s)

[ "$(id -u)" -eq 0 ] || { echo "bench: run as root (Dovecot's master needs it)" >&2; exit 1; }
need_mb=$(( MESSAGES * (USERS * 2 + 1) * 9 / 1000 + 100 ))   # 4 KB blocks: ~9 KB a message, at most
have_mb=$(df -Pm /tmp | awk 'NR == 2 { print $4 }')
[ "$have_mb" -gt "$need_mb" ] || { echo "bench: $need_mb MB needed in /tmp, $have_mb MB free" >&2; exit 1; }
for port in "$IP_PORT" "$((IP_OFFSET + 25))" "$((IP_OFFSET + 465))" "$((IP_OFFSET + 587))" "$((IP_OFFSET + 995))" "$DV_PORT"; do
    if (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null; then
        echo "bench: port $port is in use (set IP_OFFSET or DV_PORT)" >&2; exit 1
    fi
done

# --- Dovecot's packages, without starting Debian's Dovecot --------------------
missing=()
for p in dovecot-core dovecot-pop3d; do
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

cargo build --release -q -p ironpost
cargo build --release -q -p ironpost-testkit --bin pop3-load
IRONPOST=$PWD/target/release/ironpost
LOAD=$PWD/target/release/pop3-load

WORK=$(mktemp -d /tmp/ironpost-pop3.XXXXXX)
chmod 755 "$WORK"   # Dovecot's login and mail processes run as other users
DV=$WORK/dv
cleanup() {
    set +e
    [ -e "$DV/dovecot.conf" ] && dovecot -c "$DV/dovecot.conf" stop >/dev/null 2>&1
    [ -n "${IP_PID:-}" ] && kill "$IP_PID" 2>/dev/null && wait "$IP_PID" 2>/dev/null
    for _ in $(seq 50); do [ -e "$DV/run/master.pid" ] || break; sleep 0.1; done
    [ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

# --- the mailboxes: one Maildir, written once, then copied ---------------------
python3 - "$WORK/template" "$MESSAGES" <<'PY'
import os, random, sys, time
maildir, n = sys.argv[1], int(sys.argv[2])
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
        r = rnd.random()
        if r < 0.02:
            line = "." + " ".join(rnd.choices(words, k=6))   # stuffed on the wire
        elif r < 0.025:
            line = "."
        elif r < 0.08:
            line = ""
        else:
            line = " ".join(rnd.choices(words, k=rnd.randint(8, 14)))[:76]
        lines.append(line)
        size += len(line) + 1
    data = (text + "\n".join(lines) + "\n").encode()
    wire = len(data) + data.count(b"\n")
    name = f"{t}.M{q % 1000000}P{pid}Q{q}.{host},S={len(data)},W={wire}"
    with open(os.path.join(maildir, "new", name), "wb") as f:
        f.write(data)
PY
T_MADE=$(date +%s)

# --- ironpost ---------------------------------------------------------------------
$IRONPOST quickstart "$WORK/ip" --domain example.test --user jerry --password secret \
    --port-offset "$IP_OFFSET" >/dev/null
grep -q "^127.0.0.1:$IP_PORT .*pop3d" "$WORK/ip/etc/master.cf" \
    || { echo "bench: no pop3d on 127.0.0.1:$IP_PORT in ironpost's master.cf" >&2; exit 1; }
cat >> "$WORK/ip/etc/main.cf" <<CF
disable_plaintext_auth = no
login_trusted_networks = 127.0.0.0/8
pop3_uidl_format = %08Xu%08Xv
CF
mkdir -p "$WORK/ip/vmail/example.test"
for i in $(seq "$USERS"); do
    echo secret | $IRONPOST user add "u$i@example.test" --password-stdin -c "$WORK/ip/etc" >/dev/null
    cp -r "$WORK/template" "$WORK/ip/vmail/example.test/u$i"
done

# --- Dovecot, the same way ------------------------------------------------------
mkdir -p "$DV/log" "$DV/state" "$DV/vmail/example.test"
HASH=$(doveadm -c /dev/null pw -s ARGON2ID -p secret)   # the parameters ironpost uses: m=65536,t=3,p=1
for i in $(seq "$USERS"); do
    echo "u$i@example.test:$HASH" >> "$DV/passwd"
    cp -r "$WORK/template" "$DV/vmail/example.test/u$i"
done
chown -R nobody:nogroup "$DV/vmail"
cat > "$DV/dovecot.conf" <<CF
# A private Dovecot for bench/pop3/run.sh: POP3 only, on 127.0.0.1:$DV_PORT.
base_dir = $DV/run
state_dir = $DV/state
instance_name = ironpost-bench-dovecot
log_path = $DV/log/dovecot.log
info_log_path = $DV/log/dovecot.log
protocols = pop3
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
pop3_uidl_format = %08Xu%08Xv
pop3_no_flag_updates = yes
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = $DV_PORT
  }
  inet_listener pop3s {
    port = 0
  }
}
CF
rm -rf "$WORK/template"
sync   # the copies' pages go to disk now, not while we measure
T_COPIED=$(date +%s)

$IRONPOST serve -c "$WORK/ip/etc" 2>"$WORK/ip.err" & IP_PID=$!
dovecot -c "$DV/dovecot.conf" || { cat "$DV/log/dovecot.log" >&2; exit 1; }
for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/"$IP_PORT") 2>/dev/null && (exec 3<>/dev/tcp/127.0.0.1/"$DV_PORT") 2>/dev/null && break
    sleep 0.1
done

# load NAME PORT CLIENTS [OPTIONS...]: one run of the load client; prints its line
load() {
    local name=$1 port=$2 clients=$3; shift 3
    local out
    if ! out=$($LOAD "127.0.0.1:$port" --clients "$clients" --user 'u%n@example.test' \
            --password secret --expect "$MESSAGES" "$@" 2>"$WORK/load.err"); then
        echo "bench: $name, $clients clients:" >&2
        cat "$WORK/load.err" >&2
        exit 1
    fi
    echo "$out"
}
field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }

# Warm-up: one full run per server, discarded; it also compares the bytes.
ip_warm=$(load ironpost "$IP_PORT" "$USERS" --checksum --batch "$BATCH")
dv_warm=$(load dovecot "$DV_PORT" "$USERS" --checksum --batch "$BATCH")
if [ "$(field "$ip_warm" checksum)" != "$(field "$dv_warm" checksum)" ] \
        || [ "$(field "$ip_warm" bytes)" != "$(field "$dv_warm" bytes)" ]; then
    echo "bench: the servers sent different messages:" >&2
    echo "  ironpost: $ip_warm" >&2
    echo "  dovecot:  $dv_warm" >&2
    exit 1
fi
if [ "$(field "$ip_warm" pipelining)" = yes ] && [ "$(field "$dv_warm" pipelining)" = yes ]; then
    pipe="RETR pipelined in batches of $BATCH"
else
    BATCH=1
    pipe="RETR one at a time (PIPELINING: ironpost $(field "$ip_warm" pipelining), Dovecot $(field "$dv_warm" pipelining))"
fi
T_WARM=$(date +%s)

# median of the numbers on standard input
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# row NAME CLIENTS: the medians of the runs in $WORK/runs.NAME.CLIENTS
row() {
    local f=$WORK/runs.$1.$2 line
    col() { while read -r line; do field "$line" "$1"; done <"$f" | median; }
    printf '| %-8s | %7d | %8d | %12.2f | %10.0f | %9.1f |\n' "$1" "$2" "$(col messages)" \
        "$(awk -v s="$(col list_s)" 'BEGIN { print s * 1000 }')" "$(col retr_msgs_per_s)" "$(col retr_mb_per_s)"
}

DV_VERSION=$(dovecot --version | cut -d' ' -f1)
echo "$(nproc) cores, $(uname -sr), Dovecot $DV_VERSION, ironpost $($IRONPOST version | cut -d' ' -f2)," \
    "$MESSAGES messages of 2-8 KB per mailbox ($(awk -v b="$(field "$ip_warm" bytes)" -v u="$USERS" 'BEGIN { printf "%.0f", b / u / 1e6 }') MB)," \
    "$pipe; one warm-up run per server over all $USERS mailboxes before measuring; median of $ROUNDS runs per row"
echo
echo "| server   | clients | messages | listing (ms) | RETR msg/s | RETR MB/s |"
echo "|----------|--------:|---------:|-------------:|-----------:|----------:|"
for clients in 1 "$USERS"; do
    # The servers take turns, round by round.
    for _ in $(seq "$ROUNDS"); do
        load ironpost "$IP_PORT" "$clients" --batch "$BATCH" >>"$WORK/runs.ironpost.$clients"
        load dovecot "$DV_PORT" "$clients" --batch "$BATCH" >>"$WORK/runs.dovecot.$clients"
    done
    row ironpost "$clients"
    row dovecot "$clients"
done
T_END=$(date +%s)
# The load client runs on the same 2 cores: how much of them it took.
cpu() {
    while read -r line; do
        awk -v c="$(field "$line" retr_client_cpu_s)" -v t="$(field "$line" retr_s)" 'BEGIN { print 100 * c / t }'
    done <"$WORK/runs.$1.$2" | median
}
echo
printf 'load client CPU during RETR (medians, %% of one core): ironpost %.0f %% and %.0f %%, Dovecot %.0f %% and %.0f %% (1 and %d clients)\n' \
    "$(cpu ironpost 1)" "$(cpu ironpost "$USERS")" "$(cpu dovecot 1)" "$(cpu dovecot "$USERS")" "$USERS"
echo "mailboxes made in $((T_MADE - START)) s (with the build), copied in $((T_COPIED - T_MADE)) s," \
    "warm-up $((T_WARM - T_COPIED)) s, rows $((T_END - T_WARM)) s"
