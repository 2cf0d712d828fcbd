#!/usr/bin/env bash
# bench/relay/run.sh: relaying throughput of ironpost and of Postfix, on this
# machine, in one run, configured the same way: mail for another domain,
# from a client in mynetworks, relayed to one relayhost, with the queue
# fsync'd before every 250.
#
# The relay host is Postfix's smtp-sink (it answers 250 to everything and
# keeps nothing). For each server and number of sessions (1, 20),
# Postfix's smtp-source sends MESSAGES messages of 1 KB, and we measure
#   accepted/s = messages / time until smtp-source has all its 250s
#   relayed/s  = messages / time until the server logged status=sent for all
#
# Needs root (Postfix's master runs as root) and Debian's postfix package
# (smtp-source, smtp-sink, postfix). Usage: bench/relay/run.sh [MESSAGES]
set -euo pipefail
cd "$(dirname "$0")/../.."

MESSAGES=${1:-10000}
WORK=$(mktemp -d /tmp/ironpost-relay.XXXXXX)
chmod 755 "$WORK"
IP_PORT=${IP_PORT:-12625}
PF_PORT=${PF_PORT:-12626}
SINK_PORT=${SINK_PORT:-12627}
trap 'cleanup' EXIT

need() { command -v "$1" >/dev/null || { echo "bench: $1 is missing (apt-get install $2)" >&2; exit 1; }; }
need /usr/sbin/smtp-source postfix
need /usr/sbin/smtp-sink postfix
need /usr/sbin/postfix postfix
[ "$(id -u)" -eq 0 ] || { echo "bench: run as root (Postfix's master needs it)" >&2; exit 1; }

cargo build --release -q -p ironpost
IRONPOST=$PWD/target/release/ironpost

# --- the relay host -----------------------------------------------------------
/usr/sbin/smtp-sink -u nobody 127.0.0.1:$SINK_PORT 1000 & SINK_PID=$!

# --- ironpost -----------------------------------------------------------------
$IRONPOST quickstart "$WORK/ip" --domain example.test --user jerry --port-offset 10000 >/dev/null
sed -i "s/^127.0.0.1:10025 /127.0.0.1:$IP_PORT /" "$WORK/ip/etc/master.cf"
cat >> "$WORK/ip/etc/main.cf" <<CF
relayhost = [127.0.0.1]:$SINK_PORT
mynetworks = 127.0.0.0/8
smtp_tls_security_level = none
CF

# --- Postfix, the same way ----------------------------------------------------
PF=$WORK/pf
mkdir -p "$PF/etc" "$PF/spool" "$PF/data"
cat > "$PF/etc/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $PF/spool
data_directory = $PF/data
maillog_file = $PF/maillog
maillog_file_prefixes = /tmp
myhostname = mail.example.test
mydomain = example.test
myorigin = \$mydomain
mydestination = localhost
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:$SINK_PORT
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
alias_maps =
alias_database =
CF
sed "s/^smtp \{1,\}inet/127.0.0.1:$PF_PORT inet/" /usr/share/postfix/master.cf.dist > "$PF/etc/master.cf"
postconf -c "$PF/etc" -F '*/*/chroot = n'
[ -e /etc/postfix/main.cf ] || printf 'compatibility_level = 3.6\n' > /etc/postfix/main.cf
ORIG_ALT=$(postconf -h alternate_config_directories)
postconf -e "alternate_config_directories = $PF/etc${ORIG_ALT:+, $ORIG_ALT}"
postfix -c "$PF/etc" set-permissions >/dev/null 2>&1 || true
chown -R postfix "$PF/data"

cleanup() {
    set +e
    postfix -c "$PF/etc" stop >/dev/null 2>&1
    [ -n "${IP_PID:-}" ] && kill "$IP_PID" 2>/dev/null && wait "$IP_PID" 2>/dev/null
    [ -n "${SINK_PID:-}" ] && kill "$SINK_PID" 2>/dev/null && wait "$SINK_PID" 2>/dev/null
    postconf -e "alternate_config_directories = ${ORIG_ALT:-}"
    [ -n "${KEEP:-}" ] || rm -rf "$WORK"
}

sent() { { grep -c 'status=sent' "$1" 2>/dev/null || true; } | tail -1; }

# measure NAME PORT MAILLOG SESSIONS
measure() {
    local name=$1 port=$2 log=$3 sessions=$4
    local before; before=$(sent "$log")
    local t0; t0=$(date +%s.%N)
    /usr/sbin/smtp-source -s "$sessions" -m "$MESSAGES" -l 1024 \
        -f bench@example.test -t someone@remote.test "127.0.0.1:$port"
    local t1; t1=$(date +%s.%N)
    local want=$((before + MESSAGES))
    local give_up=$(( $(date +%s) + 900 ))
    while [ "$(sent "$log")" -lt "$want" ]; do
        [ "$(date +%s)" -lt "$give_up" ] || { echo "bench: $name relayed only $(( $(sent "$log") - before )) of $MESSAGES" >&2; exit 1; }
        sleep 0.05
    done
    local t2; t2=$(date +%s.%N)
    awk -v n="$MESSAGES" -v a="$t0" -v b="$t1" -v c="$t2" -v name="$name" -v s="$sessions" \
        'BEGIN { printf "| %-8s | %8d | %10.0f | %9.0f |\n", name, s, n/(b-a), n/(c-a) }'
}

$IRONPOST serve -c "$WORK/ip/etc" 2>"$WORK/ip.err" & IP_PID=$!
postfix -c "$PF/etc" start >"$WORK/pf-start.log" 2>&1 || { cat "$WORK/pf-start.log" "$PF/maillog" >&2; exit 1; }
for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/$IP_PORT) 2>/dev/null && (exec 3<>/dev/tcp/127.0.0.1/$PF_PORT) 2>/dev/null \
        && (exec 3<>/dev/tcp/127.0.0.1/$SINK_PORT) 2>/dev/null && break
    sleep 0.1
done

echo "$(nproc) cores, $(uname -sr), Postfix $(postconf -h mail_version), ironpost $($IRONPOST version | cut -d' ' -f2), $MESSAGES messages of 1 KB per row"
echo
echo "| server   | sessions | accepted/s | relayed/s |"
echo "|----------|---------:|-----------:|----------:|"
for sessions in 1 20; do
    measure ironpost "$IP_PORT" "$WORK/ip/log/maillog" "$sessions"
    measure postfix "$PF_PORT" "$PF/maillog" "$sessions"
done
